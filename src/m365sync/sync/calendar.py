"""Calendar Sync, two-way: the member's calendar window ↔ CRM events.

Outlook → CRM: ``calendarView/delta`` over a rolling window (default 30 days back, 180
ahead). One CRM event per meeting occurrence, keyed by ``iCalUId`` (plus the original
start for occurrences of a series, whose ``series_key`` is the series' ``iCalUId``), so
the same meeting in several members' calendars is one event linked to each. Graph gives
each occurrence its own ``iCalUId`` (Exchange's global object id with the instance date in
bytes 16-19); the series' id is that id with the date bytes zeroed (``series_uid``).

Over EWS (a mailbox on an Exchange Server), a round asks ``SyncFolderItems`` whether the
calendar changed since the stored SyncState and, if it did, reads the window's
``CalendarView`` as a full round (``ews.calendar``); events come in Graph's shape, so the
keys and rules below are the same.

CRM → Outlook: CRM-side creations, edits and deletions of a member's events are written
to that member's calendar **after** the pull has committed (``sync.push``).

Rules people rely on (``docs/sync.md``):

- no invitation is sent as a side effect: an event goes to Outlook without attendees
  unless the user asked to invite them on that event (``send_invitations``); a meeting
  that has attendees in Outlook is changed or deleted from the CRM only when the user
  asked to notify them, because Exchange sends updates for any such change;
- our own writes are recognised by ``changeKey`` and not applied again;
- a conflict goes to the newest modification; the losing side is overwritten.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from m365sync.crm import open_crm
from m365sync.crm.addresses import address_domain, normalize_address
from m365sync.crm.models import ActivityKind
from m365sync.crm.target import EventRecord, OutboundChange, Participant
from m365sync.db.base import utcnow
from m365sync.microsoft import errors as ms
from m365sync.microsoft.calendar import calendar_delta, calendar_events
from m365sync.microsoft.dates import graph_date_time_zone, read_graph_datetime
from m365sync.microsoft.delta import read_ahead
from m365sync.microsoft.graph import Page
from m365sync.sync.context import LeaseLost, RunContext
from m365sync.sync.push import PushRoute, push_crm_changes
from m365sync.sync.repository import SyncRepository

__all__ = ["event_key", "parse_event", "run_calendar_sync"]

CURSOR_KEY = "calendar"
CRM_CURSOR_KEY = "crm:events"


GOID_CLASS_ID = "040000008200E00074C5B7101A82E008"


def series_uid(ical_uid: str) -> str:
    """The id every occurrence of a meeting shares: an Exchange global object id with its
    instance date cleared (MS-OXOCAL's clean global object id); other ids as they are."""
    if ical_uid.upper().startswith(GOID_CLASS_ID) and len(ical_uid) >= 40:
        return ical_uid[:32] + "00000000" + ical_uid[40:]
    return ical_uid


def event_key(item: dict[str, Any]) -> tuple[str, str | None]:
    """(external id, series key) of a Graph event."""
    uid = series_uid(str(item.get("iCalUId") or f"graph:{item['id']}"))
    if item.get("type") in ("occurrence", "exception"):
        original = item.get("originalStart") or item.get("occurrenceId") or item.get("id")
        return f"{uid}#{original}", uid
    return uid, None


def parse_event(item: dict[str, Any], member_id: str) -> EventRecord:
    external_id, series_key = event_key(item)
    participants: list[Participant] = []
    organizer = (item.get("organizer") or {}).get("emailAddress") or {}
    organizer_address = normalize_address(str(organizer.get("address") or ""))
    if organizer_address:
        participants.append(
            Participant(organizer_address, str(organizer.get("name") or ""), "organizer")
        )
    for attendee in item.get("attendees") or []:
        email = (attendee or {}).get("emailAddress") or {}
        address = normalize_address(str(email.get("address") or ""))
        if address and address != organizer_address:
            participants.append(Participant(address, str(email.get("name") or ""), "attendee"))
    body = item.get("body") or {}
    location = item.get("location") or {}
    return EventRecord(
        external_id=external_id,
        member_id=member_id,
        graph_item_id=str(item["id"]),
        change_key=item.get("changeKey"),
        subject=str(item.get("subject") or ""),
        body=str(body.get("content") or "") if isinstance(body, dict) else None,
        starts_at=read_graph_datetime(item.get("start")),
        ends_at=read_graph_datetime(item.get("end")),
        is_all_day=bool(item.get("isAllDay")),
        location=str(location.get("displayName") or "") if isinstance(location, dict) else "",
        is_cancelled=bool(item.get("isCancelled")),
        series_key=series_key,
        modified_at=read_graph_datetime(item.get("lastModifiedDateTime")) or utcnow(),
        participants=participants,
        people=[],
        account_ids=[],
        organizer_address=organizer_address,
    )


class EventPageWriter:
    """Stores one page of a calendar round with its cursor, in one transaction.

    A round read from the start (first sync, a new window, an expired cursor) lists every
    event in the window: whatever this member's calendar held in the window before and the
    round didn't list was deleted meanwhile, and is removed with the round's last page."""

    def __init__(
        self, ctx: RunContext, window: tuple[datetime, datetime], *, full_round: bool = False
    ) -> None:
        self.ctx = ctx
        self.window = window
        self.full_round = full_round
        self.seen: set[str] = set()

    def write(self, page: Page) -> None:
        ctx = self.ctx
        with ctx.database.session() as session:
            repo = SyncRepository(session)
            if not repo.renew_lease(ctx.unit_id, ctx.lease_owner, ctx.settings.sync_lease_seconds):
                raise LeaseLost("This mailbox is being synced by another worker.")
            crm = open_crm(session, ctx.organization_id)
            unique = {
                i["id"]: i
                for i in page.items
                if isinstance(i, dict) and isinstance(i.get("id"), str)
            }
            removed = [i for i, item in unique.items() if "@removed" in item]
            self.seen.update(i for i, item in unique.items() if "@removed" not in item)
            records: list[EventRecord] = []
            for item_id, item in unique.items():
                if "@removed" in item or item.get("type") == "seriesMaster":
                    continue
                try:
                    records.append(parse_event(item, ctx.member_id))
                except (ValueError, TypeError, KeyError, OverflowError) as exc:
                    ctx.progress.quarantined += 1
                    repo.quarantine(
                        ctx.unit_id, item_id, f"Unreadable event: {exc}", repr(item)[:2000]
                    )
            linked = crm.linked_items(
                ActivityKind.EVENT, ctx.member_id, [r.graph_item_id for r in records]
            )
            fresh: list[EventRecord] = []
            for record in records:
                known = linked.get(record.graph_item_id)
                if known is not None and known.change_key and known.change_key == record.change_key:
                    continue  # our own write, or nothing new
                if (
                    known is not None
                    and known.crm_pending
                    and known.modified_at > record.modified_at
                ):
                    continue  # the CRM edit is newer: it wins and is pushed below
                fresh.append(record)
            external = {p.address for r in fresh for p in r.participants}
            people = crm.find_people(external) if external else {}
            accounts = (
                crm.find_accounts_by_domain({address_domain(a) for a in external})
                if external
                else {}
            )
            for record in fresh:
                record.people = list(
                    {
                        people[p.address].id: people[p.address]
                        for p in record.participants
                        if p.address in people
                    }.values()
                )
                ids = {p.account_id for p in record.people if p.account_id}
                ids |= {
                    accounts[address_domain(p.address)]
                    for p in record.participants
                    if address_domain(p.address) in accounts
                }
                record.account_ids = sorted(ids)
            result = crm.upsert_events(fresh)
            ctx.progress.logged += result.created
            if self.full_round and page.delta_link is not None:
                start, end = self.window
                removed += (
                    crm.linked_item_ids(ActivityKind.EVENT, ctx.member_id, since=start, until=end)
                    - self.seen
                )
            if removed:
                ctx.progress.removed += crm.remove_items(
                    ActivityKind.EVENT, ctx.member_id, removed, delete=True
                )
            self._save_cursor(repo, page.delta_link, page.next_link)

    def _save_cursor(self, repo: SyncRepository, delta: str | None, following: str | None) -> None:
        repo.save_cursor(
            self.ctx.unit_id,
            CURSOR_KEY,
            delta_link=delta,
            next_link=following,
            window=self.window,
        )

    def save_cursor(self, delta_link: str) -> None:
        """A round that found nothing to store still moves its cursor on."""
        with self.ctx.database.session() as session:
            repo = SyncRepository(session)
            if not repo.renew_lease(
                self.ctx.unit_id, self.ctx.lease_owner, self.ctx.settings.sync_lease_seconds
            ):
                raise LeaseLost("This mailbox is being synced by another worker.")
            self._save_cursor(repo, delta_link, None)


def _window_and_cursor(ctx: RunContext) -> tuple[tuple[datetime, datetime], str | None, str | None]:
    with ctx.database.session() as session:
        repo = SyncRepository(session)
        settings = repo.settings_for(ctx.organization_id)
        if ctx.full:
            repo.clear_cursors(ctx.unit_id)
        cursor = repo.cursor(ctx.unit_id, CURSOR_KEY)
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        wanted = (
            today - timedelta(days=settings.calendar_days_back),
            today + timedelta(days=settings.calendar_days_ahead),
        )
        if cursor.window_start == wanted[0] and cursor.window_end == wanted[1]:
            link = cursor.next_link or cursor.delta_link
        else:
            link = None  # the window rolled on (a new day): a new round over the new window
        crm_cursor = repo.cursor(ctx.unit_id, CRM_CURSOR_KEY).delta_link
        return wanted, link, crm_cursor


async def run_calendar_sync(ctx: RunContext) -> None:
    window, link, crm_cursor = await asyncio.to_thread(_window_and_cursor, ctx)
    try:
        await _pull(ctx, window, link)
    except ms.SyncStateExpired:
        await _pull(ctx, window, None)
    await push_crm_changes(ctx, _push_route(ctx), crm_cursor)


async def _pull(ctx: RunContext, window: tuple[datetime, datetime], link: str | None) -> None:
    if ctx.access.exchange is not None:
        await _pull_exchange(ctx, window, link)
        return
    writer = EventPageWriter(ctx, window, full_round=link is None)
    pages = calendar_delta(
        ctx.access.graph,
        ctx.access.user_path,
        start=window[0],
        end=window[1],
        cursor=link,
        page_size=min(ctx.settings.sync_page_size, 500),
    )
    async for page in read_ahead(ctx.budget.pages(pages)):
        await asyncio.to_thread(writer.write, page)
        ctx.progress.page_done(len(page.items))


async def _pull_exchange(
    ctx: RunContext, window: tuple[datetime, datetime], state: str | None
) -> None:
    """One round over EWS (``ews.calendar``): the calendar's SyncState says whether
    anything changed since ``state``; if so the window's view is read and stored as a full
    round (what it no longer lists was deleted), the new SyncState committed with its last
    page. Nothing changed: the round ends after one request."""
    mailbox = ctx.access.exchange
    assert mailbox is not None
    new_state, changed, requests = await asyncio.to_thread(mailbox.calendar_changed, state)
    ctx.progress.requests += requests
    writer = EventPageWriter(ctx, window, full_round=True)
    if not changed:
        await asyncio.to_thread(writer.save_cursor, new_state)
        return
    events, requests = await asyncio.to_thread(mailbox.calendar_window, *window)
    ctx.progress.requests += requests
    page_size = max(1, min(ctx.settings.sync_page_size, 500))
    pages = [events[i : i + page_size] for i in range(0, len(events), page_size)] or [[]]
    for number, items in enumerate(pages, start=1):
        # A round cut short starts over (the stored cursor is cleared by its first page).
        last = number == len(pages)
        page = Page(items, next_link=None, delta_link=new_state if last else None)
        await asyncio.to_thread(writer.write, page)
        ctx.progress.page_done(len(items))


def _event_body(change: OutboundChange) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": change.subject,
        "body": {"contentType": "text", "content": change.body or ""},
        "isAllDay": change.is_all_day,
        "location": {"displayName": change.location},
    }
    if change.starts_at and change.ends_at:
        body["start"] = graph_date_time_zone(change.starts_at)
        body["end"] = graph_date_time_zone(change.ends_at)
    if change.send_invitations:
        body["attendees"] = [
            {"emailAddress": {"address": a.address, "name": a.name}, "type": "required"}
            for a in change.attendees
        ]
    return body


def _push_route(ctx: RunContext) -> PushRoute:
    """CRM events go to the member's default calendar without attendees unless the user
    asked to invite them. A meeting that has attendees in Outlook is changed or deleted
    only when the user asked to notify them (Exchange sends an update for any change);
    otherwise Outlook's version is kept."""
    return PushRoute(
        kind=ActivityKind.EVENT,
        cursor_key=CRM_CURSOR_KEY,
        items=(
            calendar_events(ctx.access.graph, ctx.access.user_path)
            if ctx.access.exchange is None
            else ctx.access.exchange.calendar_items()
        ),
        body=_event_body,
        change_key="changeKey",
        external_id="iCalUId",
        idempotent_create=True,
        leave_alone=lambda change: (
            not change.send_invitations and _is_meeting_elsewhere(change, ctx.member_email)
        ),
    )


def _is_meeting_elsewhere(change: OutboundChange, member_email: str) -> bool:
    """Does the Outlook copy have attendees (so any change would notify them)?"""
    me = normalize_address(member_email)
    return (
        any(a.address and a.address != me for a in change.attendees)
        and change.graph_item_id is not None
    )
