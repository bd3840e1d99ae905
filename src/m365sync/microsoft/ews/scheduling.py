"""Calendar Scheduling's calls over EWS, for a host whose mailbox is on an Exchange Server:
the same answers as ``microsoft.scheduling.MailboxCalendar`` gives over Graph.

- free/busy: **``GetUserAvailability``** (exchangelib's ``protocol.get_free_busy_info``,
  ``DetailedMerged``), recurring occurrences expanded by Exchange, in windows of at most 42
  days (Exchange's limit for one request); the host's working hours come with it, their
  time zone matched to one of the server's (``GetServerTimeZones``) by its rules;
- the booked meeting: ``CreateItem`` with the invitee as attendee and
  ``SendMeetingInvitations=SendToAllAndSaveCopy`` (Exchange sends the invitation, as Graph
  does for a booking), ``UpdateItem`` to move it (Exchange sends the update), ``DeleteItem``
  with ``SendMeetingCancellations=SendToAllAndSaveCopy`` to cancel it.

Differences from Graph: EWS has no ``transactionId`` (a create retried after a lost answer
can make a second event) and can't ask for a Teams meeting (``isOnlineMeeting``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from exchangelib import Attendee, CalendarItem, EWSDateTime, EWSTimeZone, HTMLBody, Mailbox

from m365sync.microsoft import errors as ms
from m365sync.microsoft.ews._errors import classify_ews_error
from m365sync.microsoft.ews.client import ExchangeServer
from m365sync.microsoft.scheduling import (
    BookedEvent,
    BusyBlock,
    CalendarSchedule,
    EventRequest,
    FreeBusyStatus,
    MailboxSettings,
    WorkingHours,
    add_window,
)

__all__ = ["GET_USER_AVAILABILITY_MAX_WINDOW", "ExchangeSchedulingCalendar"]

GET_USER_AVAILABILITY_MAX_WINDOW = timedelta(days=42)

_UTC = EWSTimeZone("UTC")
_BUSY_TYPES = {
    "Free": FreeBusyStatus.FREE,
    "Tentative": FreeBusyStatus.TENTATIVE,
    "Busy": FreeBusyStatus.BUSY,
    "OOF": FreeBusyStatus.OOF,
    "WorkingElsewhere": FreeBusyStatus.WORKING_ELSEWHERE,
}


def _ews(moment: datetime) -> EWSDateTime:
    return EWSDateTime.from_datetime(moment.astimezone(UTC)).astimezone(_UTC)


def _utc(moment: Any) -> datetime:
    return datetime.fromtimestamp(moment.timestamp(), UTC)


class ExchangeSchedulingCalendar:
    """``address``'s calendar on ``server``, for Calendar Scheduling (see the module
    docstring). Its methods are coroutines; exchangelib runs in a worker thread."""

    def __init__(self, server: ExchangeServer, address: str) -> None:
        self.server = server
        self.address = address.strip().lower()
        self._zones: list[Any] | None = None
        self._lock = threading.Lock()

    @property
    def account(self) -> Any:
        return self.server.account(self.address)

    def _zone_name(self, zone: Any, year: int) -> str:
        """The server's name for the time zone working hours are given in ("UTC" when it has
        none matching)."""
        if zone is None:
            return "UTC"
        with self._lock:
            if self._zones is None:
                self._zones = self.server.call(
                    lambda: list(self.server.protocol.get_timezones(return_full_timezone_data=True))
                )
            zones = self._zones
        try:
            return str(zone.to_server_timezone(zones, year))
        except ValueError:
            return "UTC"

    def _hours(self, view: Any, year: int) -> WorkingHours | None:
        periods = list(view.working_hours or [])
        if not periods:
            return None
        first = periods[0]
        return WorkingHours(
            weekdays=tuple(sorted({int(d) - 1 for p in periods for d in p.weekdays or []})),
            start=first.start,
            end=first.end,
            time_zone=self._zone_name(view.working_hours_timezone, year),
        )

    def _schedule(
        self, addresses: Sequence[str], start: datetime, end: datetime, interval: int
    ) -> dict[str, CalendarSchedule]:
        result: dict[str, CalendarSchedule] = {}
        window_start = start
        while window_start < end:
            window_end = min(end, window_start + GET_USER_AVAILABILITY_MAX_WINDOW)
            views = self.server.call(
                lambda ws=window_start, we=window_end: list(  # type: ignore[misc]
                    self.server.protocol.get_free_busy_info(
                        accounts=[(a, "Required", False) for a in addresses],
                        start=_ews(ws),
                        end=_ews(we),
                        merged_free_busy_interval=interval,
                    )
                )
            )
            for address, view in zip(addresses, views, strict=False):
                key = address.strip().lower()
                if isinstance(view, Exception):
                    error = classify_ews_error(view).message
                    add_window(result, CalendarSchedule(key, [], None, error))
                    continue
                items = [
                    BusyBlock(
                        _utc(e.start),
                        _utc(e.end),
                        _BUSY_TYPES.get(str(e.busy_type), FreeBusyStatus.UNKNOWN),
                    )
                    for e in view.calendar_events or []
                ]
                add_window(
                    result, CalendarSchedule(key, items, self._hours(view, window_start.year))
                )
            window_start = window_end
        return result

    async def get_schedule(
        self,
        addresses: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        interval_minutes: int = 30,
    ) -> dict[str, CalendarSchedule]:
        """Free/busy of ``addresses`` over ``[start, end)``, by lower-cased address."""
        return await asyncio.to_thread(self._schedule, addresses, start, end, interval_minutes)

    async def mailbox_settings(self) -> MailboxSettings:
        """The host's working hours and their time zone, as ``GetUserAvailability`` gives
        them (EWS has no mailboxSettings)."""
        now = datetime.now(UTC)
        schedule = (await self.get_schedule([self.address], now, now + timedelta(hours=1))).get(
            self.address
        )
        hours = schedule.working_hours if schedule is not None else None
        return MailboxSettings(hours.time_zone if hours else "UTC", hours)

    def _booked(self, item: CalendarItem) -> BookedEvent:
        item.refresh()
        return BookedEvent(
            id=str(item.id),
            ical_uid=item.uid,
            change_key=item.changekey,
            online_meeting_url=None,
            raw={"id": item.id, "iCalUId": item.uid, "changeKey": item.changekey},
        )

    def _create(self, request: EventRequest) -> BookedEvent:
        account = self.account
        item = CalendarItem(
            account=account,
            folder=account.calendar,
            subject=request.subject,
            body=HTMLBody(request.body_html),
            start=_ews(request.start),
            end=_ews(request.end),
            location=request.location or None,
            legacy_free_busy_status="Busy",
            required_attendees=[
                Attendee(mailbox=Mailbox(email_address=address, name=name or None))
                for address, name in request.attendees
            ],
        )
        item.save(send_meeting_invitations="SendToAllAndSaveCopy")
        return self._booked(item)

    def _get(self, event_id: str) -> CalendarItem:
        found = self.account.calendar.get(id=event_id)
        if not isinstance(found, CalendarItem):
            raise ms.ItemNotFound("The meeting is no longer in the host's calendar.")
        return found

    def _move(self, event_id: str, start: datetime, end: datetime) -> BookedEvent:
        item = self._get(event_id)
        item.start, item.end = _ews(start), _ews(end)
        item.save(update_fields=["start", "end"], send_meeting_invitations="SendToAllAndSaveCopy")
        return self._booked(item)

    def _cancel(self, event_id: str) -> bool:
        try:
            item = self._get(event_id)
        except ms.ItemNotFound:
            return False
        item.delete(send_meeting_cancellations="SendToAllAndSaveCopy")
        return True

    async def create_event(self, request: EventRequest) -> BookedEvent:
        return await asyncio.to_thread(self.server.call, lambda: self._create(request))

    async def move_event(self, event_id: str, start: datetime, end: datetime) -> BookedEvent:
        return await asyncio.to_thread(self.server.call, lambda: self._move(event_id, start, end))

    async def cancel_event(self, event_id: str, comment: str) -> bool:
        """Cancel the meeting (the invitee gets Exchange's cancellation). False when it was
        already gone from the calendar."""
        try:
            return await asyncio.to_thread(self.server.call, lambda: self._cancel(event_id))
        except ms.ItemNotFound:
            return False
