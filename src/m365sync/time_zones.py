"""Time zones as people read and pick them.

Every time the product shows a person is in that person's zone and in one format
(``format_when``: "Wed 12 Mar 2025, 14:05 CET"; ``format_span``: "Wed 12 Mar 2025,
14:00-14:30 CET"; ``format_day``: "Wed 12 Mar 2025"), with the zone named so a time is never
ambiguous. Zones are IANA names (``zoneinfo``).

``zone_choices`` is the picker: a short list of zones most people live in, then every
zone of each region (Europe, America, ...), each labelled with its offset from UTC today
("(UTC+01:00) Berlin") and sorted by it, instead of ~600 raw names. Legacy aliases
("US/Eastern", "Etc/GMT+5") are still accepted (``is_time_zone``) but not listed.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

__all__ = [
    "COMMON_ZONES",
    "ZoneChoice",
    "ZoneGroup",
    "format_day",
    "format_span",
    "format_when",
    "is_time_zone",
    "offset_label",
    "zone_choices",
    "zone_label",
    "zone_or_utc",
]

COMMON_ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Africa/Johannesburg",
    "Europe/Istanbul",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)
REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_time_zone(name: str | None) -> bool:
    """Whether ``name`` is a time zone this server knows (an IANA name such as
    "Europe/Berlin", or "UTC")."""
    return bool(name) and (name == "UTC" or name in _known())


def zone_or_utc(name: str | None) -> zoneinfo.ZoneInfo:
    """The zone called ``name``, or UTC for no name or an unknown one."""
    return zoneinfo.ZoneInfo(name if name and is_time_zone(name) else "UTC")


def _abbreviation(value: datetime) -> str:
    name = value.tzname() or "UTC"
    # Zones without a common abbreviation are named by their offset ("+03" → "UTC+03").
    return f"UTC{name}" if name[:1] in "+-" else name


def format_when(value: datetime, zone: tzinfo) -> str:
    """An instant as people read it, in ``zone``, the zone named: "Wed 12 Mar 2025, 14:05 CET"."""
    local = value.astimezone(zone)
    return f"{format_day(local)}, {local:%H:%M} {_abbreviation(local)}"


def format_span(start: datetime, end: datetime, zone: tzinfo) -> str:
    """A meeting's time: "Wed 12 Mar 2025, 14:00-14:30 CET" (en dash; both ends in full when it
    runs past midnight)."""
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.date() != last.date():
        return f"{format_when(first, zone)} – {format_when(last, zone)}"
    return f"{format_day(first)}, {first:%H:%M}–{last:%H:%M} {_abbreviation(last)}"


def format_day(value: date | datetime, zone: tzinfo | None = None) -> str:
    """A day: "Wed 12 Mar 2025" (an instant's day in ``zone``)."""
    if isinstance(value, datetime):
        value = value.astimezone(zone or value.tzinfo or UTC).date()
    return f"{value:%a} {value.day} {value:%b %Y}"


def offset_label(offset: timedelta) -> str:
    """ "UTC+01:00", "UTC-03:30", "UTC+00:00"."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def _place(name: str) -> str:
    """ "America/Argentina/Buenos_Aires" → "Argentina / Buenos Aires"."""
    if name == "UTC":
        return "Coordinated Universal Time"
    return name.split("/", 1)[-1].replace("_", " ").replace("/", " / ")


@dataclass(frozen=True)
class ZoneChoice:
    name: str  # the IANA name, the value a form sends
    label: str  # "(UTC+01:00) Berlin"
    offset: timedelta


@dataclass(frozen=True)
class ZoneGroup:
    label: str  # "Common", "Europe", ...
    zones: tuple[ZoneChoice, ...]


def _choice(name: str, now: datetime) -> ZoneChoice:
    offset = now.astimezone(zoneinfo.ZoneInfo(name)).utcoffset() or timedelta(0)
    return ZoneChoice(name, f"({offset_label(offset)}) {_place(name)}", offset)


def zone_label(name: str, now: datetime | None = None) -> str:
    """A zone as the picker names it: "(UTC+01:00) Berlin"."""
    return _choice(name if is_time_zone(name) else "UTC", now or datetime.now(UTC)).label


def _sorted(choices: list[ZoneChoice]) -> tuple[ZoneChoice, ...]:
    return tuple(sorted(choices, key=lambda c: (c.offset, c.label)))


@lru_cache(maxsize=4)
def _choices_at(hour: datetime) -> tuple[ZoneGroup, ...]:
    by_region: dict[str, list[ZoneChoice]] = {region: [] for region in REGIONS}
    for name in _known():
        region = name.split("/", 1)[0]
        if region in by_region and "/" in name:
            by_region[region].append(_choice(name, hour))
    common = [_choice(name, hour) for name in COMMON_ZONES if is_time_zone(name)]
    return (
        ZoneGroup("Common", _sorted(common)),
        *(ZoneGroup(region, _sorted(zones)) for region, zones in by_region.items() if zones),
    )


def zone_choices(now: datetime | None = None) -> list[ZoneGroup]:
    """The picker's groups: "Common" first, then each region, zones sorted by their offset
    from UTC at ``now`` (offsets change with daylight saving time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return list(_choices_at(moment.replace(minute=0, second=0, microsecond=0)))
