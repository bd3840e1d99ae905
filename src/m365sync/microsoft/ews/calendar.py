"""Calendars over EWS, in the shape Calendar Sync reads from Graph.

Calendar Sync keeps one CRM event per meeting occurrence in a window (Graph's
``calendarView``). EWS has the two halves separately: ``SyncFolderItems`` on the calendar
says *whether* anything changed (it lists single items and recurring masters, never
occurrences), and ``FindItem`` with a ``CalendarView`` expands the window's occurrences as
Exchange does. So a round is: the calendar's changes since the stored SyncState (IdOnly,
cheap); when there are none the round ends there; otherwise the window's view (IdOnly) and
one ``GetItem`` per 100 items for the fields a ``CalendarView`` can't return (body,
attendees). The SyncState read *before* the view is the cursor: a change made while the
view is read shows again in the next round, never nowhere.

Events come back in Graph's shape (``iCalUId`` from ``UID``, ``type``, ``originalStart``
in Graph's ``DateTimeOffset`` form), so one meeting is one CRM event whichever protocol
read it. Writes (``ExchangeCalendarItems``) send no meeting request, update or
cancellation unless the body carries attendees (the user asked to invite them):
``SendMeetingInvitations=SendToNone`` and ``SendMeetingCancellations=SendToNone``.

Blocking (exchangelib) except ``ExchangeCalendarItems``, whose methods run it in a thread.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from exchangelib import Account, Attendee, Body, CalendarItem, EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.services import SyncFolderItems

from m365sync.microsoft import errors as ms
from m365sync.microsoft.dates import read_graph_datetime
from m365sync.microsoft.ews._errors import classify_ews_error
from m365sync.microsoft.ews.client import ExchangeServer
from m365sync.microsoft.ews.mail import MAX_CHANGES, _address, _addresses, _instant
from m365sync.microsoft.ews.stamp import STAMP_FIELD, find_stamped

GET_ITEM_CHUNK = 100
"""Items per ``GetItem``: Exchange's default ``EWSMaxBatchSize`` is far above, its
throttling budget is kinder to modest batches."""

EVENT_FIELDS = (
    "uid",
    "type",
    "original_start",
    "subject",
    "text_body",
    "start",
    "end",
    "is_all_day",
    "location",
    "is_cancelled",
    "organizer",
    "required_attendees",
    "optional_attendees",
    "last_modified_time",
)

_TYPES = {
    "Single": "singleInstance",
    "Occurrence": "occurrence",
    "Exception": "exception",
    "RecurringMaster": "seriesMaster",
}

_UTC = EWSTimeZone("UTC")


def _graph_time(value: Any) -> dict[str, str] | None:
    instant = _instant(value)
    if instant is None:
        return None
    return {"dateTime": instant.removesuffix("Z"), "timeZone": "UTC"}


def graph_event(item: CalendarItem) -> dict[str, Any]:
    """An EWS calendar item in the shape of a Graph event (the fields Calendar Sync reads)."""
    attendees = [
        *_addresses(a.mailbox for a in item.required_attendees or []),
        *_addresses(a.mailbox for a in item.optional_attendees or []),
    ]
    return {
        "id": item.id,
        "changeKey": item.changekey,
        "iCalUId": item.uid,
        "type": _TYPES.get(str(item.type), "singleInstance"),
        "originalStart": _instant(item.original_start),
        "subject": item.subject or "",
        "body": {"contentType": "text", "content": item.text_body or ""},
        "start": _graph_time(item.start),
        "end": _graph_time(item.end),
        "isAllDay": bool(item.is_all_day),
        "location": {"displayName": item.location or ""},
        "isCancelled": bool(item.is_cancelled),
        "organizer": _address(item.organizer),
        "attendees": attendees,
        "lastModifiedDateTime": _instant(item.last_modified_time),
    }


def calendar_changed(
    server: ExchangeServer, account: Account, sync_state: str | None
) -> tuple[str, bool, int]:
    """(the calendar's SyncState now, whether anything changed after ``sync_state``,
    requests sent). None reads from the start (always "changed"). An expired or unreadable
    state raises ``SyncStateExpired``."""
    folder = server.call(lambda: account.calendar)  # GetFolder, once per account
    state, changed, requests = sync_state, sync_state is None, 0
    while True:
        service = SyncFolderItems(account=account)
        start = state

        def page(service: SyncFolderItems = service, start: str | None = start) -> list[Any]:
            return list(
                service.call(
                    folder=folder,
                    shape="IdOnly",
                    additional_fields=None,
                    sync_state=start,
                    ignore=None,
                    max_changes_returned=MAX_CHANGES,
                    sync_scope=None,
                )
            )

        changes = server.call(page)
        requests += 1
        changed = changed or any(kind != SyncFolderItems.READ_FLAG_CHANGE for kind, _ in changes)
        state = str(service.sync_state)
        if service.includes_last_item_in_range or state == start:
            return state, changed, requests


def calendar_window(
    server: ExchangeServer, account: Account, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Every item of the window's ``CalendarView`` (occurrences expanded, masters never
    listed) as Graph events, and the requests sent."""
    folder = server.call(lambda: account.calendar)
    view_start = EWSDateTime.from_datetime(start.astimezone(UTC)).astimezone(_UTC)
    view_end = EWSDateTime.from_datetime(end.astimezone(UTC)).astimezone(_UTC)
    ids = server.call(
        lambda: [
            (str(item_id), changekey)
            for item_id, changekey in folder.view(start=view_start, end=view_end).values_list(
                "id", "changekey"
            )
            if item_id
        ]
    )
    requests = 1
    events: list[dict[str, Any]] = []
    for first in range(0, len(ids), GET_ITEM_CHUNK):
        chunk = ids[first : first + GET_ITEM_CHUNK]
        found = server.call(
            lambda chunk=chunk: list(  # type: ignore[misc]
                account.fetch(
                    ids=chunk, folder=folder, only_fields=list(EVENT_FIELDS), chunk_size=len(chunk)
                )
            )
        )
        requests += 1
        for item in found:
            if isinstance(item, Exception):
                error = classify_ews_error(item)
                if isinstance(error, ms.ItemNotFound):
                    continue  # deleted since the view was read: the next round settles it
                raise error from item
            if isinstance(item, CalendarItem):
                events.append(graph_event(item))
    return events, requests


def _ews_time(value: Any) -> EWSDateTime | None:
    instant = read_graph_datetime(value)
    if instant is None:
        return None
    return EWSDateTime.from_datetime(instant).astimezone(_UTC)


def _apply(item: CalendarItem, body: dict[str, Any]) -> list[str]:
    """Set ``item``'s fields from a Graph event body; the fields set."""
    fields: list[str] = []
    if "subject" in body:
        item.subject = str(body["subject"] or "")
        fields.append("subject")
    if "body" in body:
        item.body = Body(str((body["body"] or {}).get("content") or ""))
        fields.append("body")
    if "isAllDay" in body:
        item.is_all_day = bool(body["isAllDay"])
        fields.append("is_all_day")
    if "location" in body:
        item.location = str((body["location"] or {}).get("displayName") or "") or None
        fields.append("location")
    for name in ("start", "end"):
        when = _ews_time(body.get(name))
        if when is not None:
            setattr(item, name, when)
            fields.append(name)
    if "attendees" in body:
        item.required_attendees = [
            Attendee(
                mailbox=Mailbox(
                    email_address=a["emailAddress"]["address"],
                    name=a["emailAddress"].get("name") or None,
                )
            )
            for a in body["attendees"]
        ]
        fields.append("required_attendees")
    return fields


def _invitations(body: dict[str, Any]) -> str:
    """Exchange sends meeting messages only when the body invites someone."""
    return "SendToAllAndSaveCopy" if body.get("attendees") else "SendToNone"


class ExchangeCalendarItems:
    """A mailbox's default calendar as ``sync.push`` writes to it (Graph event bodies in,
    Graph-shaped answers out): no meeting message is sent unless the body lists attendees
    (an update) or ``notify`` is set (a deletion)."""

    def __init__(self, server: ExchangeServer, account: Account) -> None:
        self.server = server
        self.account = account

    def _answer(self, item: CalendarItem) -> dict[str, Any]:
        item.refresh()  # the UID and ChangeKey Exchange gave it
        return {"id": item.id, "changeKey": item.changekey, "iCalUId": item.uid}

    def _create(self, body: dict[str, Any], stamp: str | None) -> dict[str, Any]:
        if stamp is not None:
            made = find_stamped(self.account.calendar, stamp)
            if isinstance(made, CalendarItem):
                return self._answer(made)  # created before a crash: not again
        item = CalendarItem(account=self.account, folder=self.account.calendar)
        _apply(item, body)
        if stamp is not None:
            setattr(item, STAMP_FIELD, stamp)
        item.save(send_meeting_invitations=_invitations(body))
        return self._answer(item)

    def _get(self, item_id: str) -> CalendarItem:
        found = self.account.calendar.get(id=item_id)
        if not isinstance(found, CalendarItem):
            raise ms.ItemNotFound("The calendar item is no longer in the mailbox.")
        return found

    def _update(self, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        item = self._get(item_id)
        fields = _apply(item, body)
        item.save(update_fields=fields, send_meeting_invitations=_invitations(body))
        return self._answer(item)

    def _delete(self, item_id: str, notify: bool) -> None:
        self._get(item_id).delete(
            send_meeting_cancellations="SendToAllAndSaveCopy" if notify else "SendToNone"
        )

    async def create(
        self, body: dict[str, Any], *, transaction_id: str | None = None
    ) -> dict[str, Any]:
        """EWS has no ``transactionId``: the item is stamped with it instead, and an item
        already stamped with it is the answer (``ews.stamp``)."""
        return await asyncio.to_thread(self.server.call, lambda: self._create(body, transaction_id))

    async def update(self, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.server.call, lambda: self._update(item_id, body))

    async def delete(self, item_id: str, *, notify: bool = False) -> None:
        await asyncio.to_thread(self.server.call, lambda: self._delete(item_id, notify))


__all__ = [
    "EVENT_FIELDS",
    "ExchangeCalendarItems",
    "calendar_changed",
    "calendar_window",
    "graph_event",
]
