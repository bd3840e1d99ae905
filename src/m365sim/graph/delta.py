"""Delta query sync state that the mail, calendarView and To Do backends share: how long
it lives, and the opaque tokens that name it.

Each store keeps its own rounds (the pages of one delta pass, ``$skiptoken``) and sync
points (where the next pass starts, ``$deltatoken``), and its own change-sequence logic
for what a round contains. What is common lives here:

- **Expiry**: sync state not used for ``SimConfig.delta_token_lifetime_seconds`` is
  forgotten, and a token naming it answers 410 ``SyncStateNotFound`` (Exchange ages
  out sync state the same way; the client must start a full sync again). Every use
  renews it.
- **Generations** (mail and calendarView, ``SyncGenerations``): every page Exchange serves
  for a sync state is a new *generation* of it, and Exchange keeps only the three most
  recent ones. A ``nextLink`` or ``deltaLink`` of an older generation answers 410
  ``SyncStateNotFound`` "The sync state generation is not found; generation=518;
  [highest=523][523][521][522]." (the text Exchange answers, as reported in
  microsoftgraph/microsoft-graph-docs#2162 and #2350). "Stale" therefore means: more than two
  generations behind the newest link the sync state has handed out. Following the newest
  link, or retrying it or the one before, works; going back further (a client that kept an
  old deltaLink while it went on syncing from a newer one, say) means a full sync.
- **Tokens** (calendarView and To Do):
  ``base64url("<kind>.<id>.<offset>[.<chain>.<generation>]")``, ``kind`` ``p`` for a
  round's page and ``d`` for a sync point; ``chain`` names the sync state whose
  ``generation`` the token is. A token of the wrong kind, or one that doesn't decode, is
  410 too. Mail signs its tokens instead, because they carry the round's query options.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

from starlette.requests import Request

from m365sim.graph.exceptions import SyncStateNotFound
from m365sim.state import SimState

__all__ = [
    "SyncGenerations",
    "Token",
    "TokenKind",
    "decode_token",
    "delta_link",
    "encode_token",
    "fresh",
    "is_expired",
    "read_token",
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


@dataclass
class SyncGenerations:
    """The generations of every sync state of one store (see the module docstring).

    ``start()`` begins a sync state (the initial delta request is its generation 0);
    ``serve(chain, generation)`` checks a token of that generation is still kept and returns
    the generation the links in the answer carry. Serving an older kept generation again
    (a retry) hands out the same next generation, so retries never age a sync state.
    """

    KEPT = 3
    MAX_STATES = 10_000
    highest: dict[str, int] = field(default_factory=dict)

    def start(self) -> tuple[str, int]:
        chain = secrets.token_hex(6)
        self.highest[chain] = 1
        while len(self.highest) > self.MAX_STATES:
            del self.highest[next(iter(self.highest))]  # the oldest sync state first
        return chain, 1

    def serve(self, chain: str, generation: int) -> int:
        highest = self.highest.get(chain)
        if highest is None:
            raise SyncStateNotFound(
                f"The sync state generation is not found; generation={generation};[highest=0]."
            )
        if generation <= highest - self.KEPT:
            kept = "".join(f"[{g}]" for g in (highest, *range(highest - self.KEPT + 1, highest)))
            raise SyncStateNotFound(
                "The sync state generation is not found; "
                f"generation={generation};[highest={highest}]{kept}."
            )
        self.highest[chain] = max(highest, generation + 1)
        return generation + 1


@dataclass(frozen=True)
class Token:
    """A decoded calendarView / To Do token; ``chain`` is empty for tokens without one."""

    ident: str
    offset: int
    chain: str = ""
    generation: int = 0


def encode_token(
    kind: TokenKind, ident: str, offset: int = 0, chain: str = "", generation: int = 0
) -> str:
    raw = f"{kind}.{ident}.{offset}"
    if chain:
        raw += f".{chain}.{generation}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, kind: TokenKind) -> tuple[str, int]:
    """``(id, offset)`` of a token of ``kind``; anything else is 410 ``SyncStateNotFound``."""
    found = read_token(token, kind)
    return found.ident, found.offset


def read_token(token: str, kind: TokenKind) -> Token:
    """A token of ``kind`` with its sync state and generation; anything else is 410."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        parts = raw.split(".")
        if len(parts) not in (3, 5) or parts[0] != kind:
            raise ValueError(parts[0])
        if len(parts) == 3:
            return Token(parts[1], int(parts[2]))
        return Token(parts[1], int(parts[2]), parts[3], int(parts[4]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SyncStateNotFound() from exc


def skip_link(
    request: Request, page_id: str, offset: int, chain: str = "", generation: int = 0
) -> str:
    """The ``@odata.nextLink`` to the page of round ``page_id`` starting at ``offset``."""
    base = str(request.url.replace(query=""))
    return f"{base}?$skiptoken={encode_token('p', page_id, offset, chain, generation)}"


def delta_link(request: Request, point_id: str, chain: str = "", generation: int = 0) -> str:
    """The ``@odata.deltaLink`` that resumes from sync point ``point_id``."""
    base = str(request.url.replace(query=""))
    return f"{base}?$deltatoken={encode_token('d', point_id, 0, chain, generation)}"
