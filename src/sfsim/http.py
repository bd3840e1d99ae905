"""Small HTTP helpers shared by every sfsim route: fast JSON, the state, the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sfsim.state import SfState


class JSONResponse(Response):
    media_type = "application/json;charset=UTF-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def sf_state(request: Request) -> SfState:
    state: SfState = request.app.state.sf
    return state


async def json_body(request: Request) -> Any:
    """The request's JSON body; malformed JSON is Salesforce's 400 ``JSON_PARSER_ERROR``."""
    from sfsim.data.exceptions import JsonParserError

    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JsonParserError(f"Unexpected character: was expecting a JSON value ({exc})") from exc


@dataclass(frozen=True)
class Caller:
    """Who is calling the REST API: the session's user and connected app."""

    user_id: str
    username: str
    app: str


def tag_request(
    request: Request,
    *,
    app: str | None = None,
    username: str | None = None,
    counted: bool | None = None,
) -> None:
    tags = request.scope.setdefault("state", {}).setdefault("log_tags", {})
    if app is not None:
        tags["app"] = app
    if username is not None:
        tags["username"] = username
    if counted is not None:
        tags["counted"] = counted
