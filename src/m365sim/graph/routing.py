"""Route helpers: every mailbox resource is reachable as ``/me/...`` and ``/users/{id}/...``;
control routes (``/_sim/.../{user}/...``) address a user in any simulated tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from m365sim.directory.models import Tenant, User
from m365sim.graph.exceptions import UserNotFound
from m365sim.http import sim_state

GRAPH_PREFIX = "/v1.0"


def user_key(request: Request) -> str | None:
    """The ``{user_id}`` path segment (id or userPrincipalName), or None for ``/me``."""
    value = request.path_params.get("user_id")
    return str(value) if value is not None else None


def control_user(request: Request) -> tuple[Tenant, User]:
    """The ``{user}`` path segment of a control route (id, UPN or address, any tenant)."""
    found = sim_state(request).find_user_anywhere(str(request.path_params["user"]))
    if found is None:
        raise UserNotFound(f"No user {request.path_params['user']!r} in any simulated tenant.")
    return found


def mailbox_routes(
    path: str, endpoint: Callable[[Request], Any], methods: Sequence[str]
) -> list[Route]:
    """``/v1.0/me{path}`` and ``/v1.0/users/{user_id}{path}`` bound to one endpoint."""
    return [
        Route(f"{GRAPH_PREFIX}/me{path}", endpoint, methods=list(methods)),
        Route(f"{GRAPH_PREFIX}/users/{{user_id}}{path}", endpoint, methods=list(methods)),
    ]
