"""The Graph calls Calendar Scheduling makes: free/busy, mailbox settings, and the booked event.

- ``POST {mailbox}/calendar/getSchedule`` with ``Prefer: outlook.timezone="UTC"``: free/busy
  items (busy, tentative, oof, workingElsewhere, free) of one or more calendars, recurring
  occurrences expanded by Exchange. A window is at most 62 days; longer ranges are split.
- ``GET {mailbox}/mailboxSettings``: the rep's time zone and Outlook working hours.
- ``POST {mailbox}/calendar/events`` with the invitee as attendee, so Exchange sends the
  invitation; ``transactionId`` = the booking id, so a retried request never creates a
  second event. ``isOnlineMeeting`` asks Exchange for a Teams meeting.
- ``PATCH {mailbox}/events/{id}`` moves it (Exchange sends the update);
  ``POST {mailbox}/events/{id}/cancel`` cancels it (Exchange sends the cancellation).

Everything is raised as a ``microsoft.errors`` category by ``GraphClient``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol

from m365sync.microsoft.dates import graph_date_time_zone, read_graph_datetime
from m365sync.microsoft.errors import ItemNotFound, UnexpectedResponse
from m365sync.microsoft.graph import UTC_PREFERENCE, GraphClient, user_path

__all__ = [
    "BookedEvent",
    "BusyBlock",
    "CalendarSchedule",
    "EventRequest",
    "FreeBusyStatus",
    "MailboxCalendar",
    "Room",
    "SchedulingCalendar",
    "WorkingHours",
    "add_window",
]

GET_SCHEDULE_MAX_WINDOW = timedelta(days=62)
ROOM_SCHEDULES_PER_REQUEST = 20
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class FreeBusyStatus(StrEnum):
    """``scheduleItem.status`` / ``event.showAs`` values Microsoft Graph reports."""

    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BusyBlock:
    """One free/busy item of a calendar (``getSchedule``'s ``scheduleItems``)."""

    start: datetime
    end: datetime
    status: FreeBusyStatus = FreeBusyStatus.BUSY


@dataclass(frozen=True)
class WorkingHours:
    """Outlook's working hours: the same window on each listed weekday, in ``time_zone``.
    An ``end`` at or before ``start`` means the window runs to midnight."""

    weekdays: tuple[int, ...]  # Monday = 0
    start: time
    end: time
    time_zone: str  # as Microsoft names it (Windows or IANA)


DEFAULT_WORKING_HOURS = WorkingHours((0, 1, 2, 3, 4), time(8), time(17), "UTC")


@dataclass(frozen=True)
class CalendarSchedule:
    address: str
    items: list[BusyBlock]
    working_hours: WorkingHours | None
    error: str | None = None


@dataclass(frozen=True)
class EventRequest:
    subject: str
    body_html: str
    start: datetime
    end: datetime
    attendees: Sequence[tuple[str, str]]  # (address, name)
    location: str = ""
    online_meeting: bool = False
    transaction_id: str | None = None
    resources: Sequence[tuple[str, str]] = ()  # (address, name): rooms, invited as resources


@dataclass(frozen=True)
class Room:
    """A room mailbox of the tenant (Graph's ``microsoft.graph.room``)."""

    email: str
    name: str
    capacity: int | None


@dataclass(frozen=True)
class BookedEvent:
    id: str
    ical_uid: str | None
    change_key: str | None
    online_meeting_url: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _instant(value: Any) -> datetime:
    """A free/busy item's start or end, which Graph always sends."""
    try:
        parsed = read_graph_datetime(value)
    except ValueError as exc:
        raise UnexpectedResponse(f"Microsoft Graph sent an unreadable date: {exc}") from exc
    if parsed is None:
        raise UnexpectedResponse("Microsoft Graph sent a free/busy item without its time.")
    return parsed


def _parse_time(value: Any, default: time) -> time:
    if not isinstance(value, str) or not value:
        return default
    try:
        return time.fromisoformat(value.split(".", 1)[0])
    except ValueError:
        return default


def parse_working_hours(raw: Any) -> WorkingHours | None:
    if not isinstance(raw, dict):
        return None
    days = tuple(
        _WEEKDAYS.index(str(d).lower())
        for d in raw.get("daysOfWeek") or []
        if str(d).lower() in _WEEKDAYS
    )
    zone = raw.get("timeZone")
    zone_name = zone.get("name") if isinstance(zone, dict) else zone
    return WorkingHours(
        weekdays=tuple(sorted(days)),
        start=_parse_time(raw.get("startTime"), time(8)),
        end=_parse_time(raw.get("endTime"), time(17)),
        time_zone=str(zone_name or "UTC"),
    )


def _status(value: Any) -> FreeBusyStatus:
    try:
        return FreeBusyStatus(str(value))
    except ValueError:
        return FreeBusyStatus.UNKNOWN


@dataclass(frozen=True)
class MailboxSettings:
    time_zone: str
    working_hours: WorkingHours | None


def add_window(result: dict[str, CalendarSchedule], window: CalendarSchedule) -> None:
    """Fold one window's schedule of an address into ``result`` (a range longer than one
    request's limit is asked for in windows): items add up, the first working hours and
    error found are kept."""
    previous = result.get(window.address)
    if previous is None:
        result[window.address] = window
        return
    result[window.address] = CalendarSchedule(
        address=window.address,
        items=previous.items + window.items,
        working_hours=previous.working_hours or window.working_hours,
        error=previous.error or window.error,
    )


class SchedulingCalendar(Protocol):
    """A host's calendar as Calendar Scheduling uses it: ``MailboxCalendar`` (Graph) or, for
    a mailbox on an Exchange Server, ``ews.scheduling.ExchangeSchedulingCalendar``."""

    async def mailbox_settings(self) -> MailboxSettings: ...

    async def get_schedule(
        self,
        addresses: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        interval_minutes: int = 30,
    ) -> dict[str, CalendarSchedule]: ...

    async def create_event(self, request: EventRequest) -> BookedEvent: ...

    async def move_event(self, event_id: str, start: datetime, end: datetime) -> BookedEvent: ...

    async def cancel_event(self, event_id: str, comment: str) -> bool: ...


class MailboxCalendar:
    """One mailbox's calendar, through a ``GraphClient`` that may reach it.

    ``mailbox`` is the user id or address for app-only access (a service account), or None
    for the signed-in user's own mailbox (a user connection: ``/me``).
    """

    def __init__(self, client: GraphClient, mailbox: str | None) -> None:
        self.client = client
        self.mailbox = mailbox
        self.base = user_path(mailbox)

    async def mailbox_settings(self) -> MailboxSettings:
        data = await self.client.get_json(f"{self.base}/mailboxSettings")
        return MailboxSettings(
            time_zone=str(data.get("timeZone") or "UTC"),
            working_hours=parse_working_hours(data.get("workingHours")),
        )

    async def get_schedule(
        self,
        addresses: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        interval_minutes: int = 30,
    ) -> dict[str, CalendarSchedule]:
        """Free/busy of ``addresses`` over ``[start, end)``, by lower-cased address."""
        result: dict[str, CalendarSchedule] = {}
        window_start = start
        while window_start < end:
            window_end = min(end, window_start + GET_SCHEDULE_MAX_WINDOW)
            data = await self.client.post_json(
                f"{self.base}/calendar/getSchedule",
                {
                    "schedules": list(addresses),
                    "startTime": graph_date_time_zone(window_start),
                    "endTime": graph_date_time_zone(window_end),
                    "availabilityViewInterval": interval_minutes,
                },
                prefer=[UTC_PREFERENCE],
            )
            for entry in data.get("value") or []:
                address = str(entry.get("scheduleId", "")).lower()
                error = entry.get("error")
                items = [
                    BusyBlock(
                        _instant(item.get("start")),
                        _instant(item.get("end")),
                        _status(item.get("status")),
                    )
                    for item in entry.get("scheduleItems") or []
                ]
                add_window(
                    result,
                    CalendarSchedule(
                        address=address,
                        items=items,
                        working_hours=parse_working_hours(entry.get("workingHours")),
                        error=error.get("message") if isinstance(error, dict) else None,
                    ),
                )
            window_start = window_end
        return result

    async def rooms(self) -> list[Room]:
        """The tenant's rooms (``GET /places/microsoft.graph.room``, 100 a page; needs
        ``Place.Read.All``)."""
        found: list[Room] = []
        async for page in self.client.iterate_pages("/places/microsoft.graph.room"):
            for item in page.items:
                address = item.get("emailAddress") if isinstance(item, dict) else None
                if not isinstance(address, str) or not address:
                    continue
                capacity = item.get("capacity")
                found.append(
                    Room(
                        address,
                        str(item.get("displayName") or address)[:200],
                        capacity if isinstance(capacity, int) else None,
                    )
                )
        return found

    async def room_schedules(
        self, start: datetime, end: datetime, *, per_request: int = ROOM_SCHEDULES_PER_REQUEST
    ) -> list[tuple[Room, CalendarSchedule | None]]:
        """Every room of the tenant (:meth:`rooms`) with its free/busy over ``[start, end)``,
        asked ``per_request`` rooms to a ``getSchedule`` call; None when Microsoft sent none
        for a room."""
        rooms = await self.rooms()
        found: list[tuple[Room, CalendarSchedule | None]] = []
        for first in range(0, len(rooms), per_request):
            chunk = rooms[first : first + per_request]
            schedules = await self.get_schedule([r.email for r in chunk], start, end)
            found.extend((room, schedules.get(room.email.lower())) for room in chunk)
        return found

    async def create_event(self, request: EventRequest) -> BookedEvent:
        body: dict[str, Any] = {
            "subject": request.subject,
            "body": {"contentType": "HTML", "content": request.body_html},
            "start": graph_date_time_zone(request.start),
            "end": graph_date_time_zone(request.end),
            "attendees": [
                {"emailAddress": {"address": address, "name": name}, "type": "required"}
                for address, name in request.attendees
            ]
            + [
                {"emailAddress": {"address": address, "name": name}, "type": "resource"}
                for address, name in request.resources
            ],
            "allowNewTimeProposals": False,
            "showAs": "busy",
        }
        if request.location:
            body["location"] = {"displayName": request.location}
        if request.online_meeting:
            body["isOnlineMeeting"] = True
            body["onlineMeetingProvider"] = "teamsForBusiness"
        if request.transaction_id:
            body["transactionId"] = request.transaction_id
        data = await self.client.post_json(f"{self.base}/calendar/events", body)
        return _booked(data)

    async def move_event(self, event_id: str, start: datetime, end: datetime) -> BookedEvent:
        data = await self.client.patch_json(
            f"{self.base}/events/{event_id}",
            {"start": graph_date_time_zone(start), "end": graph_date_time_zone(end)},
        )
        if not data:
            data = await self.client.get_json(f"{self.base}/events/{event_id}")
        return _booked(data)

    async def cancel_event(self, event_id: str, comment: str) -> bool:
        """Cancel the meeting (attendees get Exchange's cancellation). False when the event
        was already gone from the calendar (deleted in Outlook): nothing left to do."""
        try:
            await self.client.post_json(
                f"{self.base}/events/{event_id}/cancel", {"comment": comment}
            )
        except ItemNotFound:
            return False
        return True


def _booked(data: dict[str, Any]) -> BookedEvent:
    event_id = data.get("id")
    if not isinstance(event_id, str):
        raise UnexpectedResponse("Microsoft Graph created the event but sent no id back.")
    online = data.get("onlineMeeting")
    join_url = online.get("joinUrl") if isinstance(online, dict) else None
    return BookedEvent(
        id=event_id,
        ical_uid=data.get("iCalUId"),
        change_key=data.get("changeKey"),
        online_meeting_url=join_url or data.get("onlineMeetingUrl"),
        raw=data,
    )
