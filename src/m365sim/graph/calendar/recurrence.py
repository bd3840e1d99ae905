"""Graph's ``patternedRecurrence``: parsing, serialising and expanding to occurrence dates.

A series is expanded in its own time zone (``range.recurrenceTimeZone``, else the zone of
the master's ``start``): every occurrence starts at the master's local wall-clock time on
its date, so a 09:00 Pacific meeting stays at 09:00 Pacific across a DST change while its
UTC instant moves by an hour — as Exchange does.

Differences from Exchange: an ``absoluteMonthly``/``absoluteYearly`` day that a month
lacks (the 31st, 29 February) falls on the month's last day; the range's ``startDate`` is
the first candidate date even when the master's ``start`` is on another day (Exchange
moves the master to the first occurrence); series end at year 4500 at the latest.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from m365sim.graph.calendar.exceptions import InvalidRecurrence
from m365sim.graph.timezones import UnknownTimeZone, windows_name

__all__ = ["DAYS", "Recurrence", "RecurrencePattern", "RecurrenceRange"]

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
PATTERNS = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGES = ("endDate", "noEnd", "numbered")
INDEXES = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
LAST_YEAR = 4500


def _day_number(day: date) -> int:
    """0 for Sunday ... 6 for Saturday (Graph's ``dayOfWeek`` order)."""
    return (day.weekday() + 1) % 7


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, _calendar.monthrange(year, month)[1]))


def _nth_weekday(year: int, month: int, days: tuple[str, ...], index: str) -> date | None:
    wanted = {DAYS.index(d) for d in days}
    last = _calendar.monthrange(year, month)[1]
    matches = [
        date(year, month, d)
        for d in range(1, last + 1)
        if _day_number(date(year, month, d)) in wanted
    ]
    if not matches:
        return None
    position = INDEXES[index]
    if position == -1:
        return matches[-1]
    return matches[position] if position < len(matches) else None


@dataclass
class RecurrencePattern:
    type: str
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    day_of_month: int = 0
    month: int = 0
    index: str = "first"
    first_day_of_week: str = "sunday"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "interval": self.interval,
            "month": self.month,
            "dayOfMonth": self.day_of_month,
            "daysOfWeek": list(self.days_of_week),
            "firstDayOfWeek": self.first_day_of_week,
            "index": self.index,
        }


@dataclass
class RecurrenceRange:
    type: str
    start_date: date
    end_date: date | None = None
    number_of_occurrences: int = 0
    recurrence_time_zone: str = "UTC"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "startDate": self.start_date.isoformat(),
            "endDate": self.end_date.isoformat() if self.end_date else "0001-01-01",
            "recurrenceTimeZone": self.recurrence_time_zone,
            "numberOfOccurrences": self.number_of_occurrences,
        }


@dataclass
class Recurrence:
    pattern: RecurrencePattern
    range: RecurrenceRange = field(default_factory=lambda: RecurrenceRange("noEnd", date.today()))

    def as_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern.as_json(), "range": self.range.as_json()}

    @classmethod
    def from_json(cls, raw: Any, *, default_time_zone: str, default_start: date) -> Recurrence:
        """Validate a request's ``recurrence``; errors are Graph's 400 naming the field."""
        if not isinstance(raw, dict):
            raise InvalidRecurrence("The recurrence must be an object with a pattern and a range.")
        pattern_raw = raw.get("pattern")
        range_raw = raw.get("range")
        if not isinstance(pattern_raw, dict) or not isinstance(range_raw, dict):
            raise InvalidRecurrence("The recurrence must have both a pattern and a range.")
        kind = pattern_raw.get("type")
        if kind not in PATTERNS:
            raise InvalidRecurrence(f"Recurrence pattern type '{kind}' is not valid.")
        interval = pattern_raw.get("interval", 1)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise InvalidRecurrence("The recurrence pattern interval must be 1 or more.")
        days_raw = pattern_raw.get("daysOfWeek") or []
        if not isinstance(days_raw, list) or any(
            not isinstance(d, str) or d.lower() not in DAYS for d in days_raw
        ):
            raise InvalidRecurrence("daysOfWeek must list day names (sunday ... saturday).")
        days = tuple(sorted({d.lower() for d in days_raw}, key=DAYS.index))
        first_day = str(pattern_raw.get("firstDayOfWeek") or "sunday").lower()
        if first_day not in DAYS:
            raise InvalidRecurrence(f"firstDayOfWeek '{first_day}' is not a day name.")
        index = str(pattern_raw.get("index") or "first")
        if index not in INDEXES:
            raise InvalidRecurrence(f"Recurrence index '{index}' is not valid.")
        day_of_month = int(pattern_raw.get("dayOfMonth") or 0)
        month = int(pattern_raw.get("month") or 0)
        if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days:
            raise InvalidRecurrence(f"A {kind} recurrence pattern needs daysOfWeek.")
        if kind in ("absoluteMonthly", "absoluteYearly") and not 1 <= day_of_month <= 31:
            raise InvalidRecurrence(f"A {kind} recurrence pattern needs dayOfMonth (1-31).")
        if kind in ("absoluteYearly", "relativeYearly") and not 1 <= month <= 12:
            raise InvalidRecurrence(f"A {kind} recurrence pattern needs month (1-12).")
        pattern = RecurrencePattern(
            type=kind,
            interval=interval,
            days_of_week=days,
            day_of_month=day_of_month,
            month=month,
            index=index,
            first_day_of_week=first_day,
        )

        range_kind = range_raw.get("type")
        if range_kind not in RANGES:
            raise InvalidRecurrence(f"Recurrence range type '{range_kind}' is not valid.")
        try:
            start = (
                date.fromisoformat(str(range_raw["startDate"]))
                if range_raw.get("startDate")
                else default_start
            )
            end_raw = range_raw.get("endDate")
            end = (
                date.fromisoformat(str(end_raw))
                if end_raw and str(end_raw) != "0001-01-01"
                else None
            )
        except ValueError as exc:
            raise InvalidRecurrence("Recurrence range dates must be YYYY-MM-DD.") from exc
        count = int(range_raw.get("numberOfOccurrences") or 0)
        if range_kind == "endDate" and (end is None or end < start):
            raise InvalidRecurrence(
                "An endDate recurrence range needs an endDate on or after startDate."
            )
        if range_kind == "numbered" and count < 1:
            raise InvalidRecurrence(
                "A numbered recurrence range needs numberOfOccurrences of 1 or more."
            )
        zone_raw = range_raw.get("recurrenceTimeZone") or default_time_zone
        try:
            zone = windows_name(str(zone_raw))
        except UnknownTimeZone as exc:
            raise InvalidRecurrence(f"recurrenceTimeZone '{zone_raw}' is not supported.") from exc
        return cls(
            pattern=pattern,
            range=RecurrenceRange(
                type=range_kind,
                start_date=start,
                end_date=end if range_kind == "endDate" else None,
                number_of_occurrences=count if range_kind == "numbered" else 0,
                recurrence_time_zone=zone,
            ),
        )

    # -- expansion ---------------------------------------------------------------------------
    def dates(self) -> Iterator[date]:
        """Occurrence dates in order, honouring the range (infinite for ``noEnd``)."""
        limit = self.range.number_of_occurrences if self.range.type == "numbered" else None
        end = self.range.end_date if self.range.type == "endDate" else None
        for produced, day in enumerate(self._candidates(), start=1):
            if (end is not None and day > end) or day.year > LAST_YEAR:
                return
            yield day
            if limit is not None and produced >= limit:
                return

    def _candidates(self) -> Iterator[date]:
        p = self.pattern
        start = self.range.start_date
        if p.type == "daily":
            day = start
            while day.year <= LAST_YEAR:
                yield day
                day += timedelta(days=p.interval)
            return
        if p.type == "weekly":
            first = DAYS.index(p.first_day_of_week)
            week = start - timedelta(days=(_day_number(start) - first) % 7)
            wanted = {DAYS.index(d) for d in p.days_of_week}
            while week.year <= LAST_YEAR:
                for offset in range(7):
                    day = week + timedelta(days=offset)
                    if day >= start and _day_number(day) in wanted:
                        yield day
                week += timedelta(weeks=p.interval)
            return
        if p.type in ("absoluteMonthly", "relativeMonthly"):
            year, month = start.year, start.month
            while year <= LAST_YEAR:
                if p.type == "absoluteMonthly":
                    candidate: date | None = _clamped(year, month, p.day_of_month)
                else:
                    candidate = _nth_weekday(year, month, p.days_of_week, p.index)
                if candidate is not None and candidate >= start:
                    yield candidate
                month += p.interval
                year += (month - 1) // 12
                month = (month - 1) % 12 + 1
            return
        year = start.year
        while year <= LAST_YEAR:
            if p.type == "absoluteYearly":
                candidate = _clamped(year, p.month, p.day_of_month)
            else:
                candidate = _nth_weekday(year, p.month, p.days_of_week, p.index)
            if candidate is not None and candidate >= start:
                yield candidate
            year += p.interval
