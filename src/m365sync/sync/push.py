"""CRM → Microsoft: a member's CRM-side changes to meetings or tasks, written to their mailbox.

Calendar Sync and Task Sync both end a run here, after their pull has committed; each
describes its items with a ``PushRoute`` (which Graph collection, how a CRM change becomes
an item's body, which answer fields to keep).

Each Microsoft write happens after the local transaction that decided it has committed,
and its result is recorded in a new one. Writing first and committing after would, on a
rollback, leave an item in Outlook or To Do that the CRM doesn't know about, and the retry
would create it a second time. A crash between an event's create and its record is covered
by the create's ``transactionId`` (the retried POST returns the same event); over EWS,
which has none, by a stamp on the item that the retry looks for (``ews.stamp``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from m365sync.crm import open_crm
from m365sync.crm.models import ActivityKind
from m365sync.crm.target import OutboundChange, PushResult
from m365sync.microsoft import errors as ms
from m365sync.sync.context import RunContext
from m365sync.sync.repository import SyncRepository

__all__ = ["ItemWriter", "PushRoute", "push_crm_changes"]


class ItemWriter(Protocol):
    """Where a route's items are written: a Graph collection (``graph.ItemCollection``) or
    an Exchange calendar over EWS (``ews.calendar.ExchangeCalendarItems``). Bodies and
    answers are in Graph's shape either way."""

    async def create(
        self, body: dict[str, Any], *, transaction_id: str | None = None
    ) -> dict[str, Any]: ...

    async def update(self, item_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def delete(self, item_id: str, *, notify: bool = False) -> None:
        """``notify``: the user asked for the attendees to be told (a cancellation)."""
        ...


def _never(change: OutboundChange) -> bool:
    return False


@dataclass(frozen=True)
class PushRoute:
    """Where one kind of CRM activity goes in a member's mailbox, and how it is written."""

    kind: ActivityKind
    cursor_key: str
    """Where the cursor over the CRM's changes is kept (with the unit's other cursors)."""
    items: ItemWriter
    body: Callable[[OutboundChange], dict[str, Any]]
    change_key: str
    """The answer's field that changes with every edit (our own writes aren't pulled back)."""
    external_id: str
    """The answer's field the CRM keeps as the item's external id."""
    idempotent_create: bool = False
    """Send the activity id as the create's ``transactionId`` (Graph events; over EWS,
    events and tasks, where it becomes the item's stamp)."""
    leave_alone: Callable[[OutboundChange], bool] = _never
    """Changes Microsoft must not be sent: its copy is kept as it is."""


async def push_crm_changes(ctx: RunContext, route: PushRoute, crm_cursor: str | None) -> None:
    """Write every CRM-side change since ``crm_cursor`` to the member's mailbox, a batch
    at a time, each batch's results and the advanced cursor recorded once it is written."""

    def load(cursor: str | None) -> tuple[list[OutboundChange], str | None]:
        with ctx.database.session() as session:
            return open_crm(session, ctx.organization_id).changes_since(
                route.kind, ctx.member_id, cursor
            )

    def record(pushed: list[PushResult], cursor: str | None) -> None:
        with ctx.database.session() as session:
            open_crm(session, ctx.organization_id).record_pushed(route.kind, ctx.member_id, pushed)
            SyncRepository(session).save_cursor(
                ctx.unit_id, route.cursor_key, delta_link=cursor, next_link=None
            )

    while True:
        changes, next_cursor = await asyncio.to_thread(load, crm_cursor)
        results: list[PushResult] = []
        for change in changes:
            async with ctx.budget:
                result = await _write(route, change)
            if result is None:
                continue
            results.append(result)
            if change.deleted or result.graph_item_id is not None:
                ctx.progress.pushed += 1  # not an edit of an item already gone from Microsoft
        await asyncio.to_thread(record, results, next_cursor)
        if not changes or next_cursor == crm_cursor:
            return
        crm_cursor = next_cursor


async def _write(route: PushRoute, change: OutboundChange) -> PushResult | None:
    """One change written to Microsoft, and what to record of it (None: nothing, the item
    was left alone)."""
    gone = PushResult(change.activity_id, change.change_seq, None, None)
    if change.deleted:
        if change.graph_item_id and not route.leave_alone(change):
            with contextlib.suppress(ms.ItemNotFound):
                await route.items.delete(change.graph_item_id, notify=change.send_invitations)
        return gone
    if change.graph_item_id is None:
        created = await route.items.create(
            route.body(change),
            transaction_id=change.activity_id if route.idempotent_create else None,
        )
        return PushResult(
            change.activity_id,
            change.change_seq,
            str(created["id"]),
            created.get(route.change_key),
            external_id=str(created.get(route.external_id) or "") or None,
        )
    if route.leave_alone(change):
        return None
    try:
        updated = await route.items.update(change.graph_item_id, route.body(change))
    except ms.ItemNotFound:
        return gone
    return PushResult(
        change.activity_id, change.change_seq, change.graph_item_id, updated.get(route.change_key)
    )
