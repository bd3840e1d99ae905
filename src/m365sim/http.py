"""Small HTTP helpers shared by every m365sim route: fast JSON, request ids, log tagging."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from m365sim.state import SimState


class JSONResponse(Response):
    """``application/json`` rendered with orjson (Graph pages are large; this is the hot path)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def sim_state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def request_id(request: Request) -> str:
    rid = request.scope.setdefault("state", {}).get("request_id")
    if rid is None:
        rid = str(uuid.uuid4())
        request.scope["state"]["request_id"] = rid
    return str(rid)


def tag_request(
    request: Request,
    *,
    tenant_id: str | None = None,
    app_id: str | None = None,
    user_id: str | None = None,
    mailbox: str | None = None,
) -> None:
    """Record who made this request and which mailbox it addressed, for the request log."""
    tags = request.scope.setdefault("state", {}).setdefault("log_tags", {})
    for key, value in (
        ("tenant_id", tenant_id),
        ("app_id", app_id),
        ("user_id", user_id),
        ("mailbox", mailbox),
    ):
        if value is not None:
            tags[key] = value


async def json_body(request: Request) -> Any:
    """The request's JSON body; malformed JSON is Graph's 400 ``BadRequest``."""
    from m365sim.graph.exceptions import BadRequest

    raw = await request.body()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            "Unable to read JSON request payload. Please ensure Content-Type header is set "
            "and payload is of valid JSON format."
        ) from exc
