"""Calendars and events of one mailbox, with Exchange's rules for series and change tracking.

A ``CalendarStore`` (one per mailbox, ``state.store(tenant, user, "calendar", ...)``) holds
the calendars, the stored events (single instances, series masters, exceptions), the
cancelled occurrences of each series, and a per-mailbox change sequence: every mutation
bumps ``seq`` and moves the item to the end of ``changelog``, so a calendarView delta
round reads only the entries newer than its token — its cost is the number of changes,
not the size of the calendar. Deleted items leave a tombstone; a series whose schedule
changes keeps the schedule it had before, so a round can tell the client which old
occurrences vanished.

Occurrences are never stored: they are computed from the master (``expand``) in the
series' own time zone and carry ids derived from the master id and their original start,
so the same occurrence always has the same id. Editing one turns it into an ``exception``
(a stored event with the occurrence's id); deleting or cancelling one records its original
start on the master.

Differences from Exchange Online:

- Changing a series' start, end or recurrence drops its exceptions and cancelled
  occurrences (Outlook asks the user first; Exchange does the same thing).
- All-day events are floating: their start and end are midnight of their dates in
  whatever zone the response is rendered in.
- Attendee copies of cancelled meetings stay in the calendar with ``isCancelled`` true and
  a "Canceled: " subject (as in Exchange), so calendarView delta reports them as updated,
  not ``@removed``. Deleting them removes them.
- No attachments, extensions, calendar groups, shared or group calendars, and no
  ``Prefer: IdType="ImmutableId"`` distinction (event ids never change here, as events
  cannot move between calendars).
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from m365sim.dates import graph_timestamp
from m365sim.graph.calendar.exceptions import (
    CalendarInvalidRequest,
    CalendarNotFound,
    DefaultCalendarUndeletable,
    EventNotFound,
)
from m365sim.graph.calendar.formats import (
    body_preview,
    change_key,
    date_time_tz,
    floating_date_time_tz,
    midnight,
    new_item_id,
    occurrence_id,
    parse_date_time_tz,
    parse_occurrence_id,
    stored_zone_name,
    zone,
)
from m365sim.graph.calendar.recurrence import DAYS, Recurrence
from m365sim.graph.delta import fresh

__all__ = [
    "EVENT_PROPERTIES",
    "Attendee",
    "Calendar",
    "CalendarStore",
    "DeltaPage",
    "Event",
    "Schedule",
    "SyncPoint",
    "WorkingHours",
]

NEVER = "0001-01-01T00:00:00Z"

EVENT_PROPERTIES = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "categories",
        "transactionId",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "iCalUId",
        "uid",
        "reminderMinutesBeforeStart",
        "isReminderOn",
        "hasAttachments",
        "subject",
        "bodyPreview",
        "importance",
        "sensitivity",
        "isAllDay",
        "isCancelled",
        "isOrganizer",
        "responseRequested",
        "seriesMasterId",
        "showAs",
        "type",
        "webLink",
        "onlineMeetingUrl",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "allowNewTimeProposals",
        "occurrenceId",
        "isDraft",
        "hideAttendees",
        "responseStatus",
        "body",
        "start",
        "end",
        "location",
        "locations",
        "recurrence",
        "attendees",
        "organizer",
        "onlineMeeting",
        "originalStart",
    }
)
"""Top-level properties of Graph's ``event`` ($select/$orderby/$filter validation)."""

SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
IMPORTANCE = ("low", "normal", "high")
SENSITIVITY = ("normal", "personal", "private", "confidential")
ATTENDEE_TYPES = ("required", "optional", "resource")
PERSONAL_PROPERTIES = frozenset(
    {"categories", "isReminderOn", "reminderMinutesBeforeStart", "showAs", "transactionId"}
)
"""Properties whose change is the owner's own business: no meeting update is sent."""
SCHEDULE_PROPERTIES = frozenset({"start", "end", "recurrence", "isAllDay"})


@dataclass
class Attendee:
    address: str
    name: str = ""
    type: str = "required"
    response: str = "none"
    response_time: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": {
                "response": self.response,
                "time": graph_timestamp(self.response_time) if self.response_time else NEVER,
            },
            "emailAddress": {"name": self.name or self.address, "address": self.address},
        }


@dataclass
class Calendar:
    name: str
    owner_name: str
    owner_address: str
    id: str = field(default_factory=new_item_id)
    is_default: bool = False
    color: str = "auto"
    version: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "color": self.color,
            "hexColor": "",
            "isDefaultCalendar": self.is_default,
            "changeKey": change_key(self.id, self.version),
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": True,
            "isRemovable": not self.is_default,
            "owner": {"name": self.owner_name, "address": self.owner_address},
        }


@dataclass(frozen=True)
class Schedule:
    """When a series happens: what calendarView expansion needs and delta must remember."""

    start: datetime
    end: datetime
    is_all_day: bool
    recurrence: Recurrence | None


@dataclass
class Event:
    calendar_id: str
    start: datetime
    end: datetime
    start_zone: str
    end_zone: str
    organizer_name: str
    organizer_address: str
    created: datetime
    id: str = field(default_factory=new_item_id)
    ical_uid: str = ""
    subject: str = ""
    body_type: str = "html"
    body: str = ""
    is_all_day: bool = False
    location: dict[str, Any] = field(default_factory=dict)
    locations: list[dict[str, Any]] = field(default_factory=list)
    attendees: list[Attendee] = field(default_factory=list)
    is_organizer: bool = True
    show_as: str = "busy"
    sensitivity: str = "normal"
    importance: str = "normal"
    categories: list[str] = field(default_factory=list)
    is_online_meeting: bool = False
    online_meeting_provider: str = "unknown"
    online_meeting_join_url: str | None = None
    reminder_minutes: int = 15
    is_reminder_on: bool = True
    response_requested: bool = True
    allow_new_time_proposals: bool = True
    hide_attendees: bool = False
    is_cancelled: bool = False
    response: str = "organizer"
    response_time: datetime | None = None
    recurrence: Recurrence | None = None
    type: str = "singleInstance"
    series_master_id: str | None = None
    original_start: datetime | None = None
    transaction_id: str | None = None
    modified: datetime | None = None
    version: int = 1
    # Series masters only: the original starts of cancelled occurrences and of exceptions.
    cancelled: set[datetime] = field(default_factory=set)
    exceptions: dict[datetime, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ical_uid:
            self.ical_uid = new_global_object_id(self.created)
        if self.modified is None:
            self.modified = self.created

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.start, self.end, self.is_all_day, copy.deepcopy(self.recurrence))

    @property
    def has_attendees(self) -> bool:
        return any(a.address.lower() != self.organizer_address.lower() for a in self.attendees)

    def touch(self, now: datetime) -> None:
        self.version += 1
        self.modified = now

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return _overlaps(self.start, self.end, start, end)

    def as_json(self, zone_name: str = "UTC") -> dict[str, Any]:
        """Graph's ``event`` with start/end rendered in ``zone_name`` (Prefer: outlook.timezone)."""
        if self.is_all_day:
            local_zone = zone(self.start_zone)
            start = floating_date_time_tz(self.start.astimezone(local_zone).date(), zone_name)
            end = floating_date_time_tz(self.end.astimezone(local_zone).date(), zone_name)
        else:
            start = date_time_tz(self.start, zone_name)
            end = date_time_tz(self.end, zone_name)
        key = change_key(
            self.id if self.type != "occurrence" else self.series_master_id or self.id, self.version
        )
        occurrence = None
        ical_uid = self.ical_uid
        if self.type in ("occurrence", "exception") and self.original_start is not None:
            occurrence = f"OID.{self.series_master_id}.{self.original_start:%Y-%m-%d}"
            local_day = self.original_start.astimezone(zone(self.start_zone)).date()
            ical_uid = occurrence_global_object_id(self.ical_uid, local_day)
        return {
            "@odata.etag": f'W/"{key}"',
            "id": self.id,
            "createdDateTime": graph_timestamp(self.created),
            "lastModifiedDateTime": graph_timestamp(self.modified or self.created),
            "changeKey": key,
            "categories": list(self.categories),
            "transactionId": self.transaction_id,
            "originalStartTimeZone": self.start_zone,
            "originalEndTimeZone": self.end_zone,
            "iCalUId": ical_uid,
            "uid": self.ical_uid,
            "reminderMinutesBeforeStart": self.reminder_minutes,
            "isReminderOn": self.is_reminder_on,
            "hasAttachments": False,
            "subject": self.subject,
            "bodyPreview": body_preview(self.body, self.body_type),
            "importance": self.importance,
            "sensitivity": self.sensitivity,
            "isAllDay": self.is_all_day,
            "isCancelled": self.is_cancelled,
            "isOrganizer": self.is_organizer,
            "responseRequested": self.response_requested,
            "seriesMasterId": self.series_master_id,
            "showAs": self.show_as,
            "type": self.type,
            "webLink": (
                "https://outlook.office365.com/owa/?itemid="
                f"{quote(self.id, safe='')}&exvsurl=1&path=/calendar/item"
            ),
            "onlineMeetingUrl": None,
            "isOnlineMeeting": self.is_online_meeting,
            "onlineMeetingProvider": self.online_meeting_provider,
            "allowNewTimeProposals": self.allow_new_time_proposals,
            "occurrenceId": occurrence,
            "isDraft": False,
            "hideAttendees": self.hide_attendees,
            "responseStatus": {
                "response": self.response,
                "time": graph_timestamp(self.response_time) if self.response_time else NEVER,
            },
            "body": {"contentType": self.body_type, "content": self.body},
            "start": start,
            "end": end,
            "location": _location_json(self.location),
            "locations": [_location_json(loc) for loc in self.locations],
            "recurrence": self.recurrence.as_json() if self.recurrence else None,
            "attendees": [a.as_json() for a in self.attendees],
            "organizer": {
                "emailAddress": {"name": self.organizer_name, "address": self.organizer_address}
            },
            "onlineMeeting": (
                {"joinUrl": self.online_meeting_join_url} if self.online_meeting_join_url else None
            ),
        }


GOID_CLASS_ID = "040000008200E00074C5B7101A82E008"
"""The first 16 bytes (hex) of every Exchange meeting id (PidLidGlobalObjectId, MS-OXOCAL)."""


def new_global_object_id(created: datetime) -> str:
    """A series' (or single meeting's) ``iCalUId``, laid out like Exchange's global object
    id: class id, a zero instance date, the creation time (FILETIME), 8 reserved bytes, the
    size of the data that follows and 16 random bytes of data, all as upper-case hex."""
    filetime = int(created.timestamp() * 10_000_000) + 116_444_736_000_000_000
    return (
        GOID_CLASS_ID
        + "00000000"
        + filetime.to_bytes(8, "little").hex().upper()
        + "0" * 16
        + (16).to_bytes(4, "little").hex().upper()
        + uuid.uuid4().hex.upper()
    )


def occurrence_global_object_id(series_uid: str, original_day: date) -> str:
    """The ``iCalUId`` of one occurrence: the series' id with the instance date (year in two
    bytes, month, day) in bytes 16-19, as Exchange marks an instance. Graph documents the
    ``iCalUId`` as "different for each occurrence in a recurring series"; ``uid`` stays the
    series' id. An id that is not a global object id (one a test set through the control
    API) gets the date appended instead."""
    stamp = f"{original_day.year:04X}{original_day.month:02X}{original_day.day:02X}"
    if series_uid.upper().startswith(GOID_CLASS_ID) and len(series_uid) >= 40:
        return series_uid[:32] + stamp + series_uid[40:]
    return f"{series_uid}.{stamp}"


def _location_json(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "displayName": str(raw.get("displayName") or ""),
        "locationType": str(raw.get("locationType") or "default"),
        "uniqueIdType": str(raw.get("uniqueIdType") or "unknown"),
    }
    if raw.get("displayName"):
        out["uniqueId"] = str(raw.get("uniqueId") or raw["displayName"])
        out["uniqueIdType"] = str(raw.get("uniqueIdType") or "private")
    for extra in ("address", "coordinates", "locationEmailAddress", "locationUri"):
        if raw.get(extra) is not None:
            out[extra] = raw[extra]
    return out


def _overlaps(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> bool:
    """Graph's calendarView rule: ends after the window opens and starts before it closes
    (a zero-length item counts when it sits inside the window)."""
    if start == end:
        return window_start <= start < window_end
    return start < window_end and end > window_start


@dataclass
class WorkingHours:
    """``mailboxSettings.workingHours``; Exchange's default is Mon-Fri 08:00-17:00."""

    days: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    start: time = time(8, 0)
    end: time = time(17, 0)

    def as_json(self, zone_name: str) -> dict[str, Any]:
        return {
            "daysOfWeek": list(self.days),
            "startTime": f"{self.start:%H:%M:%S}.0000000",
            "endTime": f"{self.end:%H:%M:%S}.0000000",
            "timeZone": {"name": zone_name},
        }

    def contains(self, start: datetime, end: datetime, zone_name: str) -> bool:
        """Does [start, end) lie inside one working day, in the owner's zone?"""
        tz = zone(zone_name)
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        day_name = DAYS[(local_start.weekday() + 1) % 7]
        if (
            day_name not in self.days
            or local_start.date() != (local_end - timedelta(microseconds=1)).date()
        ):
            return False
        return self.start <= local_start.time() and (
            local_end.time() <= self.end or (local_end.time() == time(0) and self.end == time(0))
        )


@dataclass
class Tombstone:
    id: str
    calendar_id: str
    schedule: Schedule | None = None  # set for deleted series masters
    master_id: str | None = None


@dataclass
class SyncPoint:
    """What a ``$deltatoken`` stands for: a calendar view as of change ``seq``."""

    id: str
    calendar_id: str
    window_start: datetime
    window_end: datetime
    seq: int
    last_used: datetime


Entry = tuple[str, str]  # ("event" | "removed", instance id)


@dataclass
class DeltaPage:
    """One round of a calendarView delta, paged by ``$skiptoken`` (``id`` + offset)."""

    id: str
    calendar_id: str
    window_start: datetime
    window_end: datetime
    entries: list[Entry]
    seq_end: int
    last_used: datetime


class CalendarStore:
    """One mailbox's calendars and events."""

    def __init__(self, owner_name: str, owner_address: str, now: datetime) -> None:
        self.owner_name = owner_name
        self.owner_address = owner_address
        default = Calendar(
            name="Calendar", owner_name=owner_name, owner_address=owner_address, is_default=True
        )
        self.calendars: dict[str, Calendar] = {default.id: default}
        self.default_calendar_id = default.id
        self.events: dict[str, Event] = {}
        self.by_uid: dict[str, str] = {}
        self.by_transaction: dict[str, str] = {}
        self.seq = 0
        self.changelog: dict[str, int] = {}
        self.tombstones: dict[str, Tombstone] = {}
        self.history: dict[str, list[tuple[int, Schedule]]] = {}
        self.sync_points: dict[str, SyncPoint] = {}
        self.pages: dict[str, DeltaPage] = {}
        self.working_hours = WorkingHours()
        self.created = now

    # -- calendars -----------------------------------------------------------------------
    def calendar(self, calendar_id: str | None) -> Calendar:
        if calendar_id is None:
            return self.calendars[self.default_calendar_id]
        found = self.calendars.get(calendar_id)
        if found is None:
            raise CalendarNotFound()
        return found

    def add_calendar(self, name: str) -> Calendar:
        if not name.strip():
            raise CalendarInvalidRequest("The calendar needs a name.")
        if any(c.name.lower() == name.lower() for c in self.calendars.values()):
            raise CalendarInvalidRequest(
                f"A folder with the specified name already exists., {name}"
            )
        created = Calendar(name=name, owner_name=self.owner_name, owner_address=self.owner_address)
        self.calendars[created.id] = created
        return created

    def delete_calendar(self, calendar_id: str) -> list[Event]:
        found = self.calendar(calendar_id)
        if found.is_default:
            raise DefaultCalendarUndeletable()
        removed = [
            e
            for e in self.events.values()
            if e.calendar_id == calendar_id and e.type != "exception"
        ]
        for event in removed:
            self.remove(event.id)
        del self.calendars[calendar_id]
        return removed

    # -- change log ----------------------------------------------------------------------
    def touch(self, key: str) -> int:
        self.seq += 1
        self.changelog.pop(key, None)
        self.changelog[key] = self.seq
        return self.seq

    def remember_schedule(self, master: Event) -> None:
        """Keep a series' schedule as it is now, before a change to it (for delta)."""
        self.history.setdefault(master.id, []).append((self.seq + 1, master.schedule))

    def schedule_as_of(self, master: Event, seq: int) -> Schedule:
        """The series' schedule as a client synced up to ``seq`` saw it."""
        for changed_at, before in self.history.get(master.id, []):
            if changed_at > seq:
                return before
        return master.schedule

    # -- events --------------------------------------------------------------------------
    def add(self, event: Event) -> Event:
        self.events[event.id] = event
        if event.type != "exception":
            self.by_uid[event.ical_uid] = event.id
        if event.transaction_id:
            self.by_transaction[event.transaction_id] = event.id
        self.tombstones.pop(event.id, None)
        self.touch(event.id)
        return event

    def get(self, event_id: str) -> Event:
        """A stored event, or a computed occurrence of a series."""
        found = self.events.get(event_id)
        if found is not None:
            return found
        parsed = parse_occurrence_id(event_id)
        if parsed is not None:
            master = self.events.get(parsed[0])
            if master is not None and master.recurrence is not None:
                original = parsed[1]
                if original not in master.cancelled and self.is_occurrence(master, original):
                    return self.materialise(master, original)
        raise EventNotFound()

    def find_by_uid(self, ical_uid: str) -> Event | None:
        event_id = self.by_uid.get(ical_uid)
        return self.events.get(event_id) if event_id else None

    def is_occurrence(self, master: Event, original_start: datetime) -> bool:
        for occurrence_start, _end in self.expand_schedule(
            master.schedule, original_start, original_start + timedelta(seconds=1), raw=True
        ):
            if occurrence_start == original_start:
                return True
        return False

    def materialise(self, master: Event, original_start: datetime) -> Event:
        duration = master.end - master.start
        return replace(
            master,
            id=occurrence_id(master.id, original_start),
            type="occurrence",
            series_master_id=master.id,
            start=original_start,
            end=original_start + duration,
            recurrence=None,
            original_start=original_start,
            cancelled=set(),
            exceptions={},
        )

    def expand_schedule(
        self, schedule: Schedule, window_start: datetime, window_end: datetime, *, raw: bool = False
    ) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) of each occurrence of ``schedule`` overlapping the window, in the
        series' own zone (DST-correct wall-clock times). ``raw`` also yields occurrences that
        merely start in the window (for id checks)."""
        rec = schedule.recurrence
        if rec is None:
            return
        tz = zone(rec.range.recurrence_time_zone)
        local = schedule.start.astimezone(tz)
        wall = local.time().replace(tzinfo=None)
        duration = schedule.end - schedule.start
        for day in rec.dates():
            start = datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)
            end = start + duration
            if start >= window_end:
                return
            if _overlaps(start, end, window_start, window_end) or (raw and window_start <= start):
                yield start, end

    def occurrences(
        self, master: Event, window_start: datetime, window_end: datetime
    ) -> list[Event]:
        """The computed occurrences in the window (cancelled ones and exceptions left out)."""
        return [
            self.materialise(master, start)
            for start, _end in self.expand_schedule(master.schedule, window_start, window_end)
            if start not in master.cancelled and start not in master.exceptions
        ]

    def list_events(self, calendar_id: str | None) -> list[Event]:
        """``/events``: single instances and series masters (never occurrences/exceptions)."""
        wanted = self.calendar(calendar_id).id
        return [
            e
            for e in self.events.values()
            if e.calendar_id == wanted and e.type in ("singleInstance", "seriesMaster")
        ]

    def view(
        self, calendar_id: str | None, window_start: datetime, window_end: datetime
    ) -> list[Event]:
        """``/calendarView``: single instances, occurrences and exceptions in the window."""
        wanted = self.calendar(calendar_id).id
        found: list[Event] = []
        for event in self.events.values():
            if event.calendar_id != wanted:
                continue
            if event.type == "seriesMaster":
                found.extend(self.occurrences(event, window_start, window_end))
            elif event.overlaps(window_start, window_end):
                found.append(event)
        found.sort(key=lambda e: (e.start, e.end, e.id))
        return found

    def instances(self, event_id: str, window_start: datetime, window_end: datetime) -> list[Event]:
        master = self.get(event_id)
        if master.type != "seriesMaster":
            return []
        found = self.occurrences(master, window_start, window_end)
        for exception_id in master.exceptions.values():
            exception = self.events.get(exception_id)
            if exception is not None and exception.overlaps(window_start, window_end):
                found.append(exception)
        found.sort(key=lambda e: (e.start, e.end, e.id))
        return found

    def remove(self, event_id: str) -> Event:
        """Delete an event: a single instance, a whole series, an exception or an occurrence."""
        event = self.get(event_id)
        if event.type in ("occurrence", "exception"):
            master = self.events[event.series_master_id or ""]
            assert event.original_start is not None
            master.cancelled.add(event.original_start)
            master.exceptions.pop(event.original_start, None)
            self.events.pop(event.id, None)
            self.tombstones[event.id] = Tombstone(event.id, event.calendar_id, master_id=master.id)
            self.touch(event.id)
            return event
        if event.type == "seriesMaster":
            for exception_id in list(event.exceptions.values()):
                self.events.pop(exception_id, None)
                self.tombstones[exception_id] = Tombstone(
                    exception_id, event.calendar_id, master_id=event.id
                )
                self.touch(exception_id)
        self.events.pop(event.id, None)
        if self.by_uid.get(event.ical_uid) == event.id:
            del self.by_uid[event.ical_uid]
        if event.transaction_id and self.by_transaction.get(event.transaction_id) == event.id:
            del self.by_transaction[event.transaction_id]
        self.tombstones[event.id] = Tombstone(
            event.id, event.calendar_id, schedule=event.schedule if event.recurrence else None
        )
        self.touch(event.id)
        return event

    def drop_exceptions(self, master: Event) -> None:
        for exception_id in list(master.exceptions.values()):
            self.events.pop(exception_id, None)
            self.tombstones[exception_id] = Tombstone(
                exception_id, master.calendar_id, master_id=master.id
            )
            self.touch(exception_id)
        master.exceptions.clear()
        master.cancelled.clear()

    # -- calendarView delta --------------------------------------------------------------
    def start_round(
        self, calendar_id: str | None, window_start: datetime, window_end: datetime, now: datetime
    ) -> DeltaPage:
        """A full-sync round: every instance in the window."""
        wanted = self.calendar(calendar_id).id
        entries = [("event", e.id) for e in self.view(wanted, window_start, window_end)]
        return self._new_page(wanted, window_start, window_end, entries, now)

    def resume_round(self, point: SyncPoint, now: datetime) -> DeltaPage:
        """An incremental round: what changed in the view since ``point``."""
        changed: list[str] = []
        for key, seq in reversed(self.changelog.items()):
            if seq <= point.seq:
                break
            changed.append(key)
        changed.reverse()
        out: dict[str, str] = {}
        ws, we = point.window_start, point.window_end
        for key in changed:
            event = self.events.get(key)
            if event is not None:
                if event.calendar_id != point.calendar_id:
                    continue
                if event.type == "seriesMaster":
                    current = {o.id for o in self.occurrences(event, ws, we)}
                    for occurrence in current:
                        out.pop(occurrence, None)
                        out[occurrence] = "event"
                    exception_ids = set(event.exceptions.values())
                    for start, _end in self.expand_schedule(
                        self.schedule_as_of(event, point.seq), ws, we
                    ):
                        old = occurrence_id(event.id, start)
                        if old not in current and old not in exception_ids:
                            out.pop(old, None)
                            out[old] = "removed"
                else:
                    out.pop(key, None)
                    out[key] = "event" if event.overlaps(ws, we) else "removed"
                continue
            tomb = self.tombstones.get(key)
            if tomb is None or tomb.calendar_id != point.calendar_id:
                continue
            if tomb.schedule is not None:
                for start, _end in self.expand_schedule(tomb.schedule, ws, we):
                    old = occurrence_id(tomb.id, start)
                    out.pop(old, None)
                    out[old] = "removed"
            else:
                out.pop(key, None)
                out[key] = "removed"
        entries = [(kind, item_id) for item_id, kind in out.items()]
        return self._new_page(point.calendar_id, ws, we, entries, now)

    def _new_page(
        self, calendar_id: str, ws: datetime, we: datetime, entries: list[Entry], now: datetime
    ) -> DeltaPage:
        page = DeltaPage(secrets.token_urlsafe(12), calendar_id, ws, we, entries, self.seq, now)
        self.pages[page.id] = page
        return page

    def sync_point_after(self, page: DeltaPage, now: datetime) -> SyncPoint:
        point = SyncPoint(
            secrets.token_urlsafe(12),
            page.calendar_id,
            page.window_start,
            page.window_end,
            page.seq_end,
            now,
        )
        self.sync_points[point.id] = point
        return point

    def sync_point(self, point_id: str, now: datetime, lifetime: timedelta) -> SyncPoint:
        return fresh(self.sync_points, point_id, now, lifetime)

    def page(self, page_id: str, now: datetime, lifetime: timedelta) -> DeltaPage:
        return fresh(self.pages, page_id, now, lifetime)


# -- request bodies → events -------------------------------------------------------------------


def _text(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = body[key]
    if not isinstance(value, str):
        raise CalendarInvalidRequest(f"The '{key}' property must be a string.")
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise CalendarInvalidRequest(f"Requested value '{value}' was not found for '{key}'.")


def parse_attendees(raw: Any) -> list[Attendee]:
    if not isinstance(raw, list):
        raise CalendarInvalidRequest("The 'attendees' property must be a list.")
    found: list[Attendee] = []
    seen: set[str] = set()
    for item in raw:
        email = item.get("emailAddress") if isinstance(item, dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        if not isinstance(address, str) or "@" not in address:
            raise CalendarInvalidRequest("Each attendee needs an emailAddress with an address.")
        kind = str(item.get("type") or "required")
        if kind not in ATTENDEE_TYPES:
            raise CalendarInvalidRequest(
                f"Requested value '{kind}' was not found for attendee type."
            )
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        found.append(
            Attendee(
                address=address,
                name=str(email.get("name") or address),  # type: ignore[union-attr]
                type=kind,
                response=str(status.get("response") or "none"),
            )
        )
    return found


def apply_fields(event: Event, body: dict[str, Any], *, creating: bool) -> set[str]:
    """Set the writable properties ``body`` carries; returns the names that changed.

    Read-only and unknown properties are ignored, as Graph does for most of them.
    """
    if not isinstance(body, dict):
        raise CalendarInvalidRequest("The request body must be a JSON object.")
    changed: set[str] = set()

    def set_attr(prop: str, attr: str, value: Any) -> None:
        if getattr(event, attr) != value:
            setattr(event, attr, value)
            changed.add(prop)

    if "subject" in body:
        set_attr("subject", "subject", str(body["subject"] or ""))
    if "body" in body:
        raw = body["body"] or {}
        if not isinstance(raw, dict):
            raise CalendarInvalidRequest("The 'body' property must be an itemBody object.")
        kind = str(raw.get("contentType") or "text").lower()
        if kind not in ("text", "html"):
            raise CalendarInvalidRequest(f"Requested value '{kind}' was not found for contentType.")
        set_attr("body", "body_type", kind)
        set_attr("body", "body", str(raw.get("content") or ""))
    if "isAllDay" in body:
        set_attr("isAllDay", "is_all_day", bool(body["isAllDay"]))
    if "start" in body:
        start, start_zone = parse_date_time_tz(body["start"], "start")
        set_attr("start", "start", start)
        set_attr("start", "start_zone", stored_zone_name(start_zone))
    if "end" in body:
        end, end_zone = parse_date_time_tz(body["end"], "end")
        set_attr("end", "end", end)
        set_attr("end", "end_zone", stored_zone_name(end_zone))
    if creating and ("start" not in body or "end" not in body):
        raise CalendarInvalidRequest("An event needs both a start and an end.")
    if event.end < event.start:
        raise CalendarInvalidRequest("The end time of the event is before its start time.")
    if event.is_all_day:
        tz = zone(event.start_zone)
        if not (midnight(event.start, tz) and midnight(event.end, tz)) or event.end == event.start:
            raise CalendarInvalidRequest(
                "All-day events must start and end at midnight and last at least one day."
            )
    if "location" in body:
        raw_loc = body["location"] or {}
        if not isinstance(raw_loc, dict):
            raise CalendarInvalidRequest("The 'location' property must be an object.")
        set_attr("location", "location", dict(raw_loc))
        if "locations" not in body:
            set_attr(
                "locations", "locations", [dict(raw_loc)] if raw_loc.get("displayName") else []
            )
    if "locations" in body:
        raw_locs = body["locations"] or []
        if not isinstance(raw_locs, list) or not all(isinstance(x, dict) for x in raw_locs):
            raise CalendarInvalidRequest("The 'locations' property must be a list of locations.")
        set_attr("locations", "locations", [dict(x) for x in raw_locs])
        if "location" not in body:
            names = "; ".join(
                str(x.get("displayName") or "") for x in raw_locs if x.get("displayName")
            )
            set_attr("location", "location", {"displayName": names} if names else {})
    if "attendees" in body:
        attendees = parse_attendees(body["attendees"] or [])
        before = {a.address.lower(): a for a in event.attendees}
        for attendee in attendees:  # keep responses already given
            previous = before.get(attendee.address.lower())
            if previous is not None:
                attendee.response, attendee.response_time = (
                    previous.response,
                    previous.response_time,
                )
        if [(a.address.lower(), a.type) for a in attendees] != [
            (a.address.lower(), a.type) for a in event.attendees
        ]:
            changed.add("attendees")
        event.attendees = attendees
    for prop, attr, allowed in (
        ("showAs", "show_as", SHOW_AS),
        ("importance", "importance", IMPORTANCE),
        ("sensitivity", "sensitivity", SENSITIVITY),
    ):
        if prop in body:
            set_attr(prop, attr, _text(body, prop, allowed))
    if "categories" in body:
        cats = body["categories"] or []
        if not isinstance(cats, list):
            raise CalendarInvalidRequest("The 'categories' property must be a list of strings.")
        set_attr("categories", "categories", [str(c) for c in cats])
    for prop, attr in (
        ("isReminderOn", "is_reminder_on"),
        ("responseRequested", "response_requested"),
        ("allowNewTimeProposals", "allow_new_time_proposals"),
        ("hideAttendees", "hide_attendees"),
    ):
        if prop in body:
            set_attr(prop, attr, bool(body[prop]))
    if "reminderMinutesBeforeStart" in body:
        set_attr(
            "reminderMinutesBeforeStart",
            "reminder_minutes",
            int(body["reminderMinutesBeforeStart"] or 0),
        )
    if "transactionId" in body:
        set_attr(
            "transactionId",
            "transaction_id",
            str(body["transactionId"]) if body["transactionId"] else None,
        )
    if "isOnlineMeeting" in body or "onlineMeetingProvider" in body:
        online = bool(body.get("isOnlineMeeting", event.is_online_meeting))
        provider = (
            str(body.get("onlineMeetingProvider") or "teamsForBusiness") if online else "unknown"
        )
        set_attr("isOnlineMeeting", "is_online_meeting", online)
        set_attr("onlineMeetingProvider", "online_meeting_provider", provider)
        if online and not event.online_meeting_join_url:
            event.online_meeting_join_url = (
                "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                f"{uuid.uuid4().hex}%40thread.v2/0"
            )
        elif not online:
            event.online_meeting_join_url = None
    if "recurrence" in body:
        if event.type in ("occurrence", "exception"):
            raise CalendarInvalidRequest(
                "An occurrence of a series cannot have its own recurrence."
            )
        raw_rec = body["recurrence"]
        if raw_rec is None:
            set_attr("recurrence", "recurrence", None)
        else:
            local_start = event.start.astimezone(zone(event.start_zone))
            rec = Recurrence.from_json(
                raw_rec, default_time_zone=event.start_zone, default_start=local_start.date()
            )
            if rec != event.recurrence:
                event.recurrence = rec
                changed.add("recurrence")
        event.type = "seriesMaster" if event.recurrence else "singleInstance"
    return changed


def first_occurrence_date(event: Event) -> date:
    return event.start.astimezone(zone(event.start_zone)).date()
