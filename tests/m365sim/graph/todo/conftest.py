"""To Do tests' ``graph`` clients: ``graph("lee@contoso.com")`` is delegated with
Tasks.ReadWrite, ``graph()`` app-only."""

from __future__ import annotations

import functools

import pytest

from support.sim_tokens import GraphFactory

DELEGATED_SCOPES = ("User.Read", "Tasks.ReadWrite")
APP_ROLES = ("Calendars.ReadWrite", "Mail.ReadWrite", "Tasks.ReadWrite.All")


@pytest.fixture
def graph(graph: GraphFactory) -> GraphFactory:
    return functools.partial(graph, roles=APP_ROLES, scopes=DELEGATED_SCOPES)
