"""Route helpers: every mailbox resource is reachable as ``/me/...`` and ``/users/{id}/...``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

GRAPH_PREFIX = "/v1.0"


def user_key(request: Request) -> str | None:
    """The ``{user_id}`` path segment (id or userPrincipalName), or None for ``/me``."""
    value = request.path_params.get("user_id")
    return str(value) if value is not None else None


def mailbox_routes(
    path: str, endpoint: Callable[[Request], Any], methods: Sequence[str]
) -> list[Route]:
    """``/v1.0/me{path}`` and ``/v1.0/users/{user_id}{path}`` bound to one endpoint."""
    return [
        Route(f"{GRAPH_PREFIX}/me{path}", endpoint, methods=list(methods)),
        Route(f"{GRAPH_PREFIX}/users/{{user_id}}{path}", endpoint, methods=list(methods)),
    ]
