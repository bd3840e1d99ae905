"""Mail tests' ``graph`` clients: app-only ones default to the service account's mail roles."""

from __future__ import annotations

import functools

import pytest

from support.sim_tokens import GraphFactory

MAIL_ROLES = ("Mail.Read", "Mail.ReadWrite", "Mail.Send", "User.Read.All")


@pytest.fixture
def graph(graph: GraphFactory) -> GraphFactory:
    return functools.partial(graph, roles=MAIL_ROLES)
