"""User routes. Listed last in ``graph.urls`` so mailbox routes under ``/users/{id}/...``
match first; ``/users/{user_id}`` only matches a single path segment anyway."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.routing import GRAPH_PREFIX, mailbox_routes
from m365sim.graph.users import responses

routes: list[BaseRoute] = [
    Route(f"{GRAPH_PREFIX}/me", responses.me, methods=["GET"]),
    Route(f"{GRAPH_PREFIX}/users", responses.list_users, methods=["GET"]),
    Route(f"{GRAPH_PREFIX}/users/$count", responses.count_users, methods=["GET"]),
    *mailbox_routes("/mailboxSettings", responses.mailbox_settings, ["GET", "PATCH"]),
    Route(f"{GRAPH_PREFIX}/users/{{user_id}}", responses.get_user, methods=["GET"]),
]
