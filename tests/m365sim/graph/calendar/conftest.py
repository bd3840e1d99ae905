"""Calendar tests' ``graph`` clients: ``graph("lee@contoso.com")`` is delegated with
Calendars.ReadWrite, ``graph()`` app-only with the calendar roles. The msgraph-sdk test signs
users in through ``entra_client`` (tests/m365sim/identity), put on the import path here."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest
from sim_tokens import GraphFactory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "identity"))

DELEGATED_SCOPES = ("User.Read", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.ReadWrite")
APP_ROLES = ("Calendars.ReadWrite", "Calendars.Read", "Mail.Read", "User.Read.All")


@pytest.fixture
def graph(graph: GraphFactory) -> GraphFactory:
    return functools.partial(graph, roles=APP_ROLES, scopes=DELEGATED_SCOPES)
