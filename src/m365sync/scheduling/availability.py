"""Open slots: weekly rules x date overrides x free/busy x buffers x notice x horizon x daily limit.

Pure functions over plain values: no database, no network, no clock (``now`` is an
argument). Everything the booking page shows and everything the booking path re-checks
goes through :func:`compute_slots`, so the two can never disagree. Free/busy arrives in
Microsoft's shape (``microsoft.scheduling.BusyBlock``); which statuses block is decided here.

What is promised:

- Rules are wall-clock times in the rep's time zone (``SlotRules.time_zone``); a window
  "09:00-17:00 on Mondays" is 09:00-17:00 local on every Monday, on both sides of a
  daylight-saving change. Local times that do not exist (the skipped hour) or exist twice
  (the repeated hour) are resolved the way ``zoneinfo`` does with ``fold=0``.
- All returned instants are timezone-aware UTC.
- A slot ``[start, start + duration)`` lies inside one availability window. Its buffers
  (``buffer_before`` ahead of it, ``buffer_after`` after it) may reach outside the window
  but never overlap busy time.
- A slot starts no earlier than ``now + minimum_notice`` and no later than
  ``now + horizon``.
- A rep-local day that already holds ``daily_limit`` bookings of the meeting type offers
  no slot.
- A meeting type that books a room offers only slots at which at least one room is free
  (:func:`slots_with_a_free_room`); a room counts as taken by anything in its calendar that
  is not shown as free (``ROOM_BLOCKING``), as the booking path judges it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from m365sync.microsoft.scheduling import BusyBlock, FreeBusyStatus

__all__ = [
    "DEFAULT_BLOCKING",
    "ROOM_BLOCKING",
    "Interval",
    "LocalWindow",
    "Slot",
    "SlotRules",
    "blocking_intervals",
    "choose_round_robin",
    "collective_slots",
    "compute_slots",
    "group_by_local_day",
    "merge_intervals",
    "round_robin_slots",
    "slot_is_open",
    "slots_with_a_free_room",
]


DEFAULT_BLOCKING: frozenset[FreeBusyStatus] = frozenset(
    {FreeBusyStatus.BUSY, FreeBusyStatus.TENTATIVE, FreeBusyStatus.OOF}
)
"""Busy, tentative and out-of-office block a slot; free and working-elsewhere don't."""

ROOM_BLOCKING: frozenset[FreeBusyStatus] = frozenset(FreeBusyStatus) - {FreeBusyStatus.FREE}
"""A room is taken by anything in its calendar not shown as free."""


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Interval needs timezone-aware datetimes")

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class LocalWindow:
    """A wall-clock window on one day; ``end == time(0)`` means midnight at the day's end."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end != time(0) and self.end <= self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class SlotRules:
    """A meeting type's rules, resolved for one rep (their time zone)."""

    duration: timedelta
    time_zone: tzinfo
    weekly: Mapping[int, Sequence[LocalWindow]]  # weekday (Monday = 0) → windows
    overrides: Mapping[date, Sequence[LocalWindow]] = field(default_factory=dict)  # [] = day off
    interval: timedelta | None = None  # between slot starts; default: the duration
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    minimum_notice: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=60)
    daily_limit: int | None = None

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.interval is not None and self.interval <= timedelta(0):
            raise ValueError("interval must be positive")

    @property
    def step(self) -> timedelta:
        return self.interval or self.duration


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime
    end: datetime
    member_ids: tuple[str, ...] = ()  # who can take it (round-robin) / who attends (collective)


# -- free/busy ----------------------------------------------------------------------------


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, touching intervals joined."""
    merged: list[Interval] = []
    for item in sorted(intervals):
        if item.end <= item.start:
            continue
        if merged and item.start <= merged[-1].end:
            if item.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, item.end)
        else:
            merged.append(item)
    return merged


def blocking_intervals(
    blocks: Iterable[BusyBlock], blocking: frozenset[FreeBusyStatus] = DEFAULT_BLOCKING
) -> list[Interval]:
    """The merged intervals of ``blocks`` whose status blocks a booking."""
    return merge_intervals(
        Interval(b.start.astimezone(UTC), b.end.astimezone(UTC))
        for b in blocks
        if b.status in blocking
    )


class _BusyIndex:
    """Merged busy intervals with an O(log n) overlap query."""

    def __init__(self, busy: Iterable[Interval]) -> None:
        self.intervals = merge_intervals(busy)
        self.starts = [i.start for i in self.intervals]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # The last interval starting before ``end`` is the only candidate (they're merged).
        pos = bisect.bisect_left(self.starts, end) - 1
        return pos >= 0 and self.intervals[pos].end > start


# -- slots -------------------------------------------------------------------------------


def _window_bounds(day: date, window: LocalWindow, zone: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)
    end_day = day + timedelta(days=1) if window.end == time(0) else day
    end = datetime.combine(end_day, window.end, tzinfo=zone).astimezone(UTC)
    return start, end


def _windows_for(rules: SlotRules, day: date) -> Sequence[LocalWindow]:
    if day in rules.overrides:
        return rules.overrides[day]
    return rules.weekly.get(day.weekday(), ())


def compute_slots(
    rules: SlotRules,
    busy: Iterable[Interval],
    *,
    now: datetime,
    range_start: datetime | None = None,
    range_end: datetime | None = None,
    bookings_per_day: Mapping[date, int] | None = None,
    member_id: str = "",
) -> list[Slot]:
    """Open slots for one rep, sorted, within ``[range_start, range_end)`` (starts).

    ``busy`` is every interval the rep is unavailable (calendar items that block, plus
    bookings not yet visible in the calendar); ``bookings_per_day`` counts this meeting
    type's bookings per rep-local day for the daily limit.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = rules.time_zone
    earliest = now + rules.minimum_notice
    latest = now + rules.horizon
    if range_start is not None:
        earliest = max(earliest, range_start)
    if range_end is not None:
        latest = min(latest, range_end - timedelta(microseconds=1))
    if latest < earliest:
        return []
    index = _BusyIndex(i for i in busy)
    counts = bookings_per_day or {}
    slots: list[Slot] = []
    # One day of margin either side: a local day can start before ``earliest`` in UTC.
    day = earliest.astimezone(zone).date() - timedelta(days=1)
    last_day = latest.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        if rules.daily_limit is not None and counts.get(day, 0) >= rules.daily_limit:
            day += timedelta(days=1)
            continue
        for window in _windows_for(rules, day):
            window_start, window_end = _window_bounds(day, window, zone)
            start = window_start
            while start + rules.duration <= window_end:
                end = start + rules.duration
                if earliest <= start <= latest and not index.overlaps(
                    start - rules.buffer_before, end + rules.buffer_after
                ):
                    slots.append(Slot(start, end, (member_id,) if member_id else ()))
                start += rules.step
        day += timedelta(days=1)
    return sorted(set(slots))


def slot_is_open(
    rules: SlotRules,
    start: datetime,
    busy: Iterable[Interval],
    *,
    now: datetime,
    bookings_per_day: Mapping[date, int] | None = None,
) -> bool:
    """Is ``start`` one of the slots :func:`compute_slots` offers right now?"""
    start = start.astimezone(UTC)
    slots = compute_slots(
        rules,
        busy,
        now=now,
        range_start=start,
        range_end=start + timedelta(microseconds=1),
        bookings_per_day=bookings_per_day,
    )
    return any(s.start == start for s in slots)


def slots_with_a_free_room(
    slots: Iterable[Slot], rooms_busy: Iterable[Iterable[Interval]]
) -> list[Slot]:
    """The ``slots`` during which at least one room is free; ``rooms_busy`` holds each
    room's taken intervals (no room at all: no slot)."""
    indexes = [_BusyIndex(busy) for busy in rooms_busy]
    return [s for s in slots if any(not i.overlaps(s.start, s.end) for i in indexes)]


# -- teams -------------------------------------------------------------------------------


def round_robin_slots(per_member: Mapping[str, Sequence[Slot]]) -> list[Slot]:
    """Every time at least one rep is free, with the reps free then (in the given order)."""
    order = list(per_member)
    by_time: dict[tuple[datetime, datetime], list[str]] = {}
    for member_id in order:
        for slot in per_member[member_id]:
            by_time.setdefault((slot.start, slot.end), []).append(member_id)
    return [Slot(start, end, tuple(members)) for (start, end), members in sorted(by_time.items())]


def collective_slots(per_member: Mapping[str, Sequence[Slot]]) -> list[Slot]:
    """Only the times at which every rep is free; the slot lists all of them."""
    if not per_member:
        return []
    members = tuple(per_member)
    common: set[tuple[datetime, datetime]] | None = None
    for member_id in members:
        times = {(s.start, s.end) for s in per_member[member_id]}
        common = times if common is None else common & times
    return [Slot(start, end, members) for start, end in sorted(common or ())]


def choose_round_robin(
    candidates: Sequence[str],
    booking_counts: Mapping[str, int],
    last_booked_at: Mapping[str, datetime] | None = None,
) -> list[str]:
    """Candidates in the order to try: fewest bookings first, then the one booked longest
    ago (never booked first), then the team's own order. Balancing by count means a rep who
    joined late catches up instead of being skipped."""
    last = last_booked_at or {}
    never = datetime.min.replace(tzinfo=UTC)
    position = {member_id: i for i, member_id in enumerate(candidates)}
    return sorted(
        candidates,
        key=lambda m: (booking_counts.get(m, 0), last.get(m, never), position[m]),
    )


def group_by_local_day(slots: Iterable[Slot], zone: tzinfo) -> dict[date, list[Slot]]:
    """Slots grouped by the invitee's local date, in order (what the booking page lists)."""
    grouped: dict[date, list[Slot]] = {}
    for slot in sorted(slots):
        grouped.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    return grouped
