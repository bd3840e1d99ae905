"""Delta query sync state that the mail, calendarView and To Do backends share: how long
it lives, and the opaque tokens that name it.

Each store keeps its own rounds (the pages of one delta pass, ``$skiptoken``) and sync
points (where the next pass starts, ``$deltatoken``), and its own change-sequence logic
for what a round contains. What is common lives here:

- **Expiry**: sync state not used for ``SimConfig.delta_token_lifetime_seconds`` is
  forgotten, and a token naming it answers 410 ``SyncStateNotFound`` (Exchange ages
  out sync state the same way; the client must start a full sync again). Every use
  renews it.
- **Tokens** (calendarView and To Do): ``base64url("<kind>.<id>.<offset>")``, ``kind``
  ``p`` for a round's page and ``d`` for a sync point. A token of the wrong kind, or one
  that doesn't decode, is 410 too. Mail signs its tokens instead, because they carry the
  round's query options and its 410s name the sync generation (``MailStore``).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

from starlette.requests import Request

from m365sim.graph.exceptions import SyncStateNotFound
from m365sim.state import SimState

__all__ = [
    "TokenKind",
    "decode_token",
    "delta_link",
    "encode_token",
    "fresh",
    "is_expired",
    "skip_link",
    "token_lifetime",
]

TokenKind = Literal["p", "d"]  # a round's page ($skiptoken) or a sync point ($deltatoken)


class _SyncState(Protocol):
    last_used: datetime


S = TypeVar("S", bound=_SyncState)


def token_lifetime(state: SimState) -> timedelta:
    return timedelta(seconds=state.config.delta_token_lifetime_seconds)


def is_expired(last_used: datetime, now: datetime, lifetime: timedelta) -> bool:
    return now - last_used > lifetime


def fresh(table: dict[str, S], key: str, now: datetime, lifetime: timedelta) -> S:
    """The sync state ``key`` names, renewed; an unknown or expired one is dropped and 410."""
    found = table.get(key)
    if found is None or is_expired(found.last_used, now, lifetime):
        table.pop(key, None)
        raise SyncStateNotFound()
    found.last_used = now
    return found


def encode_token(kind: TokenKind, ident: str, offset: int = 0) -> str:
    raw = f"{kind}.{ident}.{offset}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: TokenKind) -> tuple[str, int]:
    """``(id, offset)`` of a token of ``kind``; anything else is 410 ``SyncStateNotFound``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        found_kind, ident, offset = raw.rsplit(".", 2)
        if found_kind != kind:
            raise ValueError(found_kind)
        return ident, int(offset)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SyncStateNotFound() from exc


def skip_link(request: Request, page_id: str, offset: int) -> str:
    """The ``@odata.nextLink`` to the page of round ``page_id`` starting at ``offset``."""
    base = str(request.url.replace(query=""))
    return f"{base}?$skiptoken={encode_token('p', page_id, offset)}"


def delta_link(request: Request, point_id: str) -> str:
    """The ``@odata.deltaLink`` that resumes from sync point ``point_id``."""
    base = str(request.url.replace(query=""))
    return f"{base}?$deltatoken={encode_token('d', point_id)}"
