"""Calendar tests' ``graph`` clients and tokens: ``graph("lee@contoso.com")`` is delegated
with Calendars.ReadWrite, ``graph()`` app-only with the calendar roles."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from sim_tokens import GraphFactory, mint_token

from m365sim.directory.models import Tenant
from m365sim.server import SimServer

DELEGATED_SCOPES = ("User.Read", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.ReadWrite")
APP_ROLES = ("Calendars.ReadWrite", "Calendars.Read", "Mail.Read", "User.Read.All")


@pytest.fixture
def graph(graph: GraphFactory) -> GraphFactory:
    return functools.partial(graph, roles=APP_ROLES, scopes=DELEGATED_SCOPES)


@pytest.fixture
def token_for(sim: SimServer, demo_tenant: Tenant) -> Callable[[str | None], str]:
    """``token_for("lee@contoso.com")`` (delegated) or ``token_for(None)`` (app-only)."""
    return lambda user: mint_token(sim, demo_tenant, user, roles=APP_ROLES, scopes=DELEGATED_SCOPES)
