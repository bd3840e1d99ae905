"""Calendar tests' ``graph`` clients: ``graph("lee@contoso.com")`` is delegated with
Calendars.ReadWrite, ``graph()`` app-only with the calendar roles."""

from __future__ import annotations

import functools

import pytest

from support.sim_tokens import GraphFactory

DELEGATED_SCOPES = ("User.Read", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.ReadWrite")
APP_ROLES = ("Calendars.ReadWrite", "Calendars.Read", "Mail.Read", "User.Read.All")


@pytest.fixture
def graph(graph: GraphFactory) -> GraphFactory:
    return functools.partial(graph, roles=APP_ROLES, scopes=DELEGATED_SCOPES)
