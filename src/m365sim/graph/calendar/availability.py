"""Free/busy: ``calendar/getSchedule`` and ``findMeetingTimes``.

Both read the default calendars of users in the caller's tenant. ``availabilityView`` has
one digit per ``availabilityViewInterval`` minutes: 0 free (and working elsewhere, as
Graph documents), 1 tentative, 2 busy, 3 out of office; a slot takes the strongest status
of the events overlapping it. Cancelled and "free" events don't count.

Differences from Exchange Online:

- Only users of the caller's own tenant have schedules; any other address (distribution
  lists, rooms, other organizations) gets a ``freeBusyError`` ``ErrorMailRecipientNotFound``.
- Calendar sharing is fixed at Exchange's default for the organization ("can view when
  I'm busy"): a delegated caller sees ``subject``/``location`` only in their own schedule;
  app-only callers see them for everyone. Private events never show them.
- Working hours come from ``User.time_zone`` and the mailbox's ``WorkingHours``
  (default Mon-Fri 08:00-17:00, settable through the control API); no out-of-office
  from automatic replies.
- ``findMeetingTimes`` implements attendees, ``timeConstraint`` (``activityDomain``
  work/personal/unrestricted and ``timeSlots``), ``meetingDuration``, ``maxCandidates``
  (default 5), ``isOrganizerOptional``, ``minimumAttendeePercentage`` and
  ``returnSuggestionReasons``; candidates are on the half hour; ``locationConstraint``
  is accepted and ignored (``locations`` is always empty). Confidence counts a free
  attendee as 100, tentative or unknown as 50, busy or away as 0, averaged.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from m365sim.directory.models import Tenant, User
from m365sim.exceptions import GraphError
from m365sim.graph.auth import check_mailbox_reachable
from m365sim.graph.calendar.backend import CalendarBackend
from m365sim.graph.calendar.exceptions import CalendarInvalidRequest
from m365sim.graph.calendar.formats import date_time_tz, parse_date_time_tz
from m365sim.graph.calendar.models import Event

__all__ = ["find_meeting_times", "get_schedule"]

RANK = {"free": 0, "workingElsewhere": 0, "unknown": 0, "tentative": 1, "busy": 2, "oof": 3}
CONFIDENCE = {
    "free": 100.0,
    "workingElsewhere": 100.0,
    "tentative": 50.0,
    "unknown": 50.0,
    "busy": 0.0,
    "oof": 0.0,
}
ALL_FREE_REASON = (
    "Suggested because it is one of the nearest times when all attendees are available."
)
MOST_FREE_REASON = (
    "Suggested because it is one of the nearest times when most attendees are available."
)
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def _busy_items(
    backend: CalendarBackend, tenant: Tenant, user: User, start: datetime, end: datetime
) -> list[Event]:
    store = backend.store(tenant, user)
    return [e for e in store.view(None, start, end) if not e.is_cancelled and e.show_as != "free"]


def _status_over(items: list[Event], start: datetime, end: datetime) -> str:
    best = "free"
    for item in items:
        if item.overlaps(start, end) and RANK.get(item.show_as, 0) > RANK[best]:
            best = item.show_as
    return best


def get_schedule(
    backend: CalendarBackend,
    tenant: Tenant,
    caller: User | None,
    body: dict[str, Any],
    zone_name: str,
) -> list[dict[str, Any]]:
    """``scheduleInformation`` for each requested address."""
    schedules = body.get("schedules") or body.get("Schedules")
    if (
        not isinstance(schedules, list)
        or not schedules
        or not all(isinstance(s, str) for s in schedules)
    ):
        raise CalendarInvalidRequest(
            "The 'schedules' parameter must list one or more SMTP addresses."
        )
    if len(schedules) > 100:
        raise CalendarInvalidRequest("getSchedule accepts at most 100 schedules.")
    start, _ = parse_date_time_tz(body.get("startTime") or body.get("StartTime"), "startTime")
    end, _ = parse_date_time_tz(body.get("endTime") or body.get("EndTime"), "endTime")
    if end <= start:
        raise CalendarInvalidRequest("The endTime must be after the startTime.")
    if end - start > timedelta(days=62):
        raise CalendarInvalidRequest("The requested time window is longer than 62 days.")
    raw_interval = body.get("availabilityViewInterval", 30)
    try:
        interval = int(raw_interval)
    except (TypeError, ValueError) as exc:
        raise CalendarInvalidRequest(
            "availabilityViewInterval must be a number of minutes."
        ) from exc
    if not 5 <= interval <= 1440:
        raise CalendarInvalidRequest("availabilityViewInterval must be between 5 and 1440 minutes.")
    step = timedelta(minutes=interval)
    slots = math.ceil((end - start) / step)
    results: list[dict[str, Any]] = []
    for address in schedules:
        owner = tenant.find_user(address)
        reachable = owner is not None
        if owner is not None:
            try:
                check_mailbox_reachable(owner)
            except GraphError:
                reachable = False
        if owner is None or not reachable:
            results.append(
                {
                    "scheduleId": address,
                    "availabilityView": "",
                    "scheduleItems": [],
                    "error": {
                        "message": (
                            f"The specified recipient {address} is not found or is not a mailbox."
                        ),
                        "responseCode": "ErrorMailRecipientNotFound",
                    },
                }
            )
            continue
        items = _busy_items(backend, tenant, owner, start, end)
        view = "".join(
            str(
                RANK.get(_status_over(items, start + i * step, min(start + (i + 1) * step, end)), 0)
            )
            for i in range(slots)
        )
        details = caller is None or caller.id == owner.id
        schedule_items = []
        for item in items:
            private = item.sensitivity == "private"
            entry: dict[str, Any] = {"isPrivate": private, "status": item.show_as}
            if details and not private:
                entry["subject"] = item.subject
                entry["location"] = item.location.get("displayName", "")
            entry["start"] = date_time_tz(item.start, zone_name)
            entry["end"] = date_time_tz(item.end, zone_name)
            schedule_items.append(entry)
        store = backend.store(tenant, owner)
        results.append(
            {
                "scheduleId": address,
                "availabilityView": view,
                "scheduleItems": schedule_items,
                "workingHours": store.working_hours.as_json(owner.time_zone),
            }
        )
    return results


def _duration(text: Any) -> timedelta:
    match = _DURATION.match(str(text or "PT30M"))
    if match is None or not any(match.groups()):
        raise CalendarInvalidRequest(f"meetingDuration '{text}' is not an ISO 8601 duration.")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def find_meeting_times(
    backend: CalendarBackend,
    tenant: Tenant,
    organizer: User,
    body: dict[str, Any],
    zone_name: str,
) -> dict[str, Any]:
    """``meetingTimeSuggestionsResult`` for a delegated caller (see the module docstring)."""
    now = backend.state.now()
    duration = _duration(body.get("meetingDuration"))
    constraint = body.get("timeConstraint") or {}
    domain = str(constraint.get("activityDomain") or "work")
    if domain not in ("work", "personal", "unrestricted", "unknown"):
        raise CalendarInvalidRequest(
            f"Requested value '{domain}' was not found for activityDomain."
        )
    windows: list[tuple[datetime, datetime]] = []
    for slot in constraint.get("timeSlots") or constraint.get("timeslots") or []:
        slot_start, _ = parse_date_time_tz(slot.get("start"), "start")
        slot_end, _ = parse_date_time_tz(slot.get("end"), "end")
        windows.append((slot_start, slot_end))
    if not windows:
        first = now.replace(second=0, microsecond=0)
        first += timedelta(minutes=(30 - first.minute % 30) % 30)
        windows.append((first, first + timedelta(days=2)))
    attendees = body.get("attendees") or []
    max_candidates = int(body.get("maxCandidates") or 5)
    organizer_optional = bool(body.get("isOrganizerOptional", False))
    minimum = float(body.get("minimumAttendeePercentage", 50))
    reasons = bool(body.get("returnSuggestionReasons", False))
    span_start = min(w[0] for w in windows)
    span_end = max(w[1] for w in windows)
    org_items = _busy_items(backend, tenant, organizer, span_start, span_end)
    org_hours = backend.store(tenant, organizer).working_hours
    parsed: list[tuple[dict[str, Any], list[Event] | None]] = []
    for attendee in attendees:
        address = (
            ((attendee.get("emailAddress") or {}).get("address") or "")
            if isinstance(attendee, dict)
            else ""
        )
        user = tenant.find_user(address) if address else None
        items = (
            _busy_items(backend, tenant, user, span_start, span_end) if user is not None else None
        )
        parsed.append(
            (
                {"type": attendee.get("type", "required"), "emailAddress": {"address": address}},
                items,
            )
        )
    suggestions: list[tuple[float, datetime, dict[str, Any]]] = []
    organizer_ever_free = False
    step = timedelta(minutes=30)
    for window_start, window_end in windows:
        candidate = window_start
        while candidate + duration <= window_end:
            slot_end = candidate + duration
            in_hours = org_hours.contains(candidate, slot_end, organizer.time_zone)
            if (domain == "work" and not in_hours) or (domain == "personal" and in_hours):
                candidate += step
                continue
            organizer_status = _status_over(org_items, candidate, slot_end)
            if organizer_status in ("busy", "oof") and not organizer_optional:
                candidate += step
                continue
            organizer_ever_free = True
            availability = []
            scores = []
            for described, items in parsed:
                status = "unknown" if items is None else _status_over(items, candidate, slot_end)
                availability.append({"attendee": described, "availability": status})
                scores.append(CONFIDENCE[status])
            confidence = sum(scores) / len(scores) if scores else 100.0
            if confidence >= minimum:
                reason = ""
                if reasons:
                    reason = ALL_FREE_REASON if confidence == 100 else MOST_FREE_REASON
                suggestions.append(
                    (
                        confidence,
                        candidate,
                        {
                            "confidence": confidence,
                            "organizerAvailability": organizer_status,
                            "attendeeAvailability": availability,
                            "locations": [],
                            "meetingTimeSlot": {
                                "start": date_time_tz(candidate, zone_name),
                                "end": date_time_tz(slot_end, zone_name),
                            },
                            "suggestionReason": reason,
                        },
                    )
                )
            candidate += step
    suggestions.sort(key=lambda s: (-s[0], s[1].astimezone(UTC)))
    chosen = suggestions[:max_candidates]
    for order, (_c, _s, suggestion) in enumerate(chosen, start=1):
        suggestion["order"] = order
    empty_reason = ""
    if not chosen:
        empty_reason = "organizerUnavailable" if not organizer_ever_free else "attendeesUnavailable"
    return {
        "emptySuggestionsReason": empty_reason,
        "meetingTimeSuggestions": [s for _c, _s, s in chosen],
    }
