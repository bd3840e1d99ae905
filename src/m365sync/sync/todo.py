"""Task Sync, two-way: the member's default To Do list ↔ the member's CRM tasks.

Only user connections can do this (To Do has no application permission), so the unit
parks with "needs their own Office 365 connection" when the member has none. Title, due
date, status/completion, importance and notes go both ways; To Do's ``@odata.etag``
plays the part of a change key (our own writes are not applied again); the newest
modification wins a conflict; deletions go both ways. CRM → To Do writes happen after the
pull has committed (``sync.push``), as in Calendar Sync.

A mailbox on an Exchange Server syncs its Tasks folder over EWS instead (through the
member's own Exchange connection, as To Do's delegated-only rule has it): ``SyncFolderItems``
pages in To Do's shape (``ews.tasks``), the SyncState as the cursor.
"""

from __future__ import annotations

import asyncio
from typing import Any

from m365sync.crm import open_crm
from m365sync.crm.models import ActivityKind
from m365sync.crm.target import OutboundChange, TaskRecord
from m365sync.db.base import utcnow
from m365sync.microsoft import errors as ms
from m365sync.microsoft.dates import graph_date_time_zone, read_graph_datetime
from m365sync.microsoft.delta import read_ahead
from m365sync.microsoft.graph import Page
from m365sync.microsoft.todo import default_list_id, list_id_from_link, task_delta, todo_tasks
from m365sync.sync.context import LeaseLost, RunContext
from m365sync.sync.push import ItemWriter, PushRoute, push_crm_changes
from m365sync.sync.repository import SyncRepository

__all__ = ["parse_task", "run_task_sync"]

CURSOR_KEY = "todo"
CRM_CURSOR_KEY = "crm:tasks"


def parse_task(item: dict[str, Any], member_id: str) -> TaskRecord:
    body = item.get("body") or {}
    return TaskRecord(
        external_id=str(item["id"]),
        member_id=member_id,
        graph_item_id=str(item["id"]),
        change_key=item.get("@odata.etag"),
        title=str(item.get("title") or ""),
        notes=str(body.get("content") or "") if isinstance(body, dict) else "",
        due_at=read_graph_datetime(item.get("dueDateTime")),
        status=str(item.get("status") or "notStarted"),
        importance=str(item.get("importance") or "normal"),
        completed_at=read_graph_datetime(item.get("completedDateTime")),
        modified_at=read_graph_datetime(item.get("lastModifiedDateTime")) or utcnow(),
    )


def _write_page(ctx: RunContext, page: Page) -> None:
    with ctx.database.session() as session:
        repo = SyncRepository(session)
        if not repo.renew_lease(ctx.unit_id, ctx.lease_owner, ctx.settings.sync_lease_seconds):
            raise LeaseLost("This mailbox is being synced by another worker.")
        crm = open_crm(session, ctx.organization_id)
        unique = {
            i["id"]: i for i in page.items if isinstance(i, dict) and isinstance(i.get("id"), str)
        }
        removed = [i for i, item in unique.items() if "@removed" in item]
        records: list[TaskRecord] = []
        for item_id, item in unique.items():
            if "@removed" in item:
                continue
            try:
                records.append(parse_task(item, ctx.member_id))
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                ctx.progress.quarantined += 1
                repo.quarantine(ctx.unit_id, item_id, f"Unreadable task: {exc}", repr(item)[:2000])
        ids = [r.graph_item_id for r in records]
        linked = crm.linked_items(ActivityKind.TASK, ctx.member_id, ids)
        if ctx.full:
            # a first round (a protocol switch starts one): a task To Do and EWS both show
            # has unrelated ids in each, so an unknown id may be a known task under the
            # other protocol's id: match it on title and due day (docs/sync.md)
            crm.adopt_tasks(
                ctx.member_id, [r for r in records if r.graph_item_id not in linked], ids
            )
        fresh = []
        for record in records:
            known = linked.get(record.graph_item_id)
            if known is not None and known.change_key and known.change_key == record.change_key:
                continue
            if known is not None and known.crm_pending and known.modified_at > record.modified_at:
                continue
            fresh.append(record)
        ctx.progress.logged += crm.upsert_tasks(fresh).created
        if removed:
            ctx.progress.removed += crm.remove_items(
                ActivityKind.TASK, ctx.member_id, removed, delete=True
            )
        repo.save_cursor(
            ctx.unit_id, CURSOR_KEY, delta_link=page.delta_link, next_link=page.next_link
        )


def _load(ctx: RunContext) -> tuple[str | None, str | None]:
    with ctx.database.session() as session:
        repo = SyncRepository(session)
        if ctx.full:
            repo.clear_cursors(ctx.unit_id)
        cursor = repo.cursor(ctx.unit_id, CURSOR_KEY)
        return cursor.next_link or cursor.delta_link, repo.cursor(
            ctx.unit_id, CRM_CURSOR_KEY
        ).delta_link


async def run_task_sync(ctx: RunContext) -> None:
    link, crm_cursor = await asyncio.to_thread(_load, ctx)
    if ctx.access.exchange is not None:
        try:
            await _pull_exchange(ctx, link)
        except ms.SyncStateExpired:
            await _pull_exchange(ctx, None)
        route = _push_route(ctx, "", items=ctx.access.exchange.task_items())
        await push_crm_changes(ctx, route, crm_cursor)
        return
    graph, path = ctx.access.graph, ctx.access.user_path
    list_id = list_id_from_link(link) if link else None
    if list_id is None:
        list_id = await default_list_id(graph, path)
        link = None
    try:
        await _pull(ctx, list_id, link)
    except ms.SyncStateExpired:
        await _pull(ctx, list_id, None)
    await push_crm_changes(ctx, _push_route(ctx, list_id), crm_cursor)


async def _pull(ctx: RunContext, list_id: str, link: str | None) -> None:
    pages = task_delta(ctx.access.graph, ctx.access.user_path, list_id, cursor=link)
    async for page in read_ahead(ctx.budget.pages(pages)):
        await asyncio.to_thread(_write_page, ctx, page)
        ctx.progress.page_done(len(page.items))


async def _pull_exchange(ctx: RunContext, state: str | None) -> None:
    """The Tasks folder's changes over EWS (``SyncFolderItems``), page by page, each page's
    SyncState committed with it (``next_link`` mid-round, ``delta_link`` on its last page)."""
    mailbox = ctx.access.exchange
    assert mailbox is not None
    while True:
        page = await asyncio.to_thread(
            mailbox.task_changes, state, page_size=ctx.settings.sync_page_size
        )
        ctx.progress.requests += page.requests
        stored = Page(
            page.items,
            next_link=None if page.last else page.sync_state,
            delta_link=page.sync_state if page.last else None,
        )
        await asyncio.to_thread(_write_page, ctx, stored)
        ctx.progress.page_done(len(page.items))
        if page.last:
            return
        state = page.sync_state


def _push_route(ctx: RunContext, list_id: str, *, items: ItemWriter | None = None) -> PushRoute:
    return PushRoute(
        kind=ActivityKind.TASK,
        cursor_key=CRM_CURSOR_KEY,
        items=items or todo_tasks(ctx.access.graph, ctx.access.user_path, list_id),
        body=_task_body,
        change_key="@odata.etag",
        external_id="id",
        idempotent_create=items is not None,  # EWS: the stamp (To Do has no transactionId)
    )


def _task_body(change: OutboundChange) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": change.subject,
        "status": change.status or "notStarted",
        "importance": change.importance or "normal",
        "body": {"contentType": "text", "content": change.body or ""},
        "dueDateTime": graph_date_time_zone(change.due_at) if change.due_at else None,
    }
    return body
