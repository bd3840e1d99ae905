"""Time zones as EWS describes them: ``TimeZoneDefinition`` (GetServerTimeZones) and the
availability service's ``SerializableTimeZone`` (a bias and two yearly transition rules).

Definitions are computed from the IANA rules behind each Windows zone name
(``m365sim.graph.timezones``): one standard period, one daylight period when the zone
observes DST in the year asked about, and the two ``RecurringDayTransition`` rules
between them (``Occurrence`` -1 for "last"). Exchange's own definitions carry each
zone's history of rule changes as several transition groups; m365sim's carry the rules
of the current year only, which is what clients use for current dates.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from m365sim.ews.soap import child, ews_duration, sub, t, text_of
from m365sim.graph.timezones import WINDOWS_TO_IANA, to_zone

__all__ = ["RuleZone", "parse_serializable_zone", "render_definition", "serializable_zone"]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _transitions(zone: tzinfo, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) for each offset change in ``year``."""
    found: list[tuple[datetime, timedelta, timedelta]] = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    previous = moment.astimezone(zone).utcoffset() or timedelta(0)
    while moment < end:
        following = moment + step
        offset = following.astimezone(zone).utcoffset() or timedelta(0)
        if offset != previous:
            low, high = moment, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if (middle.astimezone(zone).utcoffset() or timedelta(0)) == previous:
                    low = middle
                else:
                    high = middle
            found.append((high.replace(second=0, microsecond=0), previous, offset))
            previous = offset
        moment = following
    return found


def _rule(instant: datetime, offset_before: timedelta) -> tuple[int, int, int, time]:
    """(month, ISO weekday index 0=Monday, occurrence 1..4 or -1, local time) of a change."""
    local = (instant + offset_before).replace(tzinfo=None)
    days_in_month = _calendar.monthrange(local.year, local.month)[1]
    occurrence = (local.day - 1) // 7 + 1
    if local.day + 7 > days_in_month:
        occurrence = -1
    return local.month, local.weekday(), occurrence, local.time()


def render_definition(parent: Any, windows_id: str, year: int) -> Any:
    """``t:TimeZoneDefinition`` of ``windows_id`` with the rules in force in ``year``."""
    zone = to_zone(windows_id)
    changes = _transitions(zone, year)
    definition = sub(parent, t("TimeZoneDefinition"), Id=windows_id, Name=windows_id)
    periods = sub(definition, t("Periods"))
    groups = sub(definition, t("TransitionsGroups"))
    prefix = f"trule:Microsoft/Registry/{windows_id}/{year}"
    if len(changes) < 2:
        offset = datetime(year, 1, 15, tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)
        sub(periods, t("Period"), Bias=_bias(offset), Name="Standard", Id=f"{prefix}-Standard")
        group = sub(groups, t("TransitionsGroup"), Id="0")
        transition = sub(group, t("Transition"))
        sub(transition, t("To"), f"{prefix}-Standard", Kind="Period")
    else:
        standard = min(changes[0][1], changes[0][2])
        daylight = max(changes[0][1], changes[0][2])
        sub(periods, t("Period"), Bias=_bias(standard), Name="Standard", Id=f"{prefix}-Standard")
        sub(periods, t("Period"), Bias=_bias(daylight), Name="Daylight", Id=f"{prefix}-Daylight")
        group = sub(groups, t("TransitionsGroup"), Id="0")
        for instant, before, after in changes[:2]:
            month, weekday, occurrence, at = _rule(instant, before)
            node = sub(group, t("RecurringDayTransition"))
            target = "Daylight" if after == daylight else "Standard"
            sub(node, t("To"), f"{prefix}-{target}", Kind="Period")
            sub(node, t("TimeOffset"), ews_duration(at.hour * 60 + at.minute))
            sub(node, t("Month"), month)
            sub(node, t("DayOfWeek"), WEEKDAYS[weekday])
            sub(node, t("Occurrence"), occurrence)
    transitions = sub(definition, t("Transitions"))
    first = sub(transitions, t("Transition"))
    sub(first, t("To"), "0", Kind="Group")
    return definition


def _bias(offset: timedelta) -> str:
    return ews_duration(-int(offset.total_seconds() // 60))


def known_zone_ids() -> list[str]:
    return sorted(WINDOWS_TO_IANA)


# -- SerializableTimeZone (availability) ------------------------------------------------------


class _Rule:
    def __init__(self, bias: int, at: time, order: int, month: int, weekday: int) -> None:
        self.bias = bias
        self.at = at
        self.order = order
        self.month = month
        self.weekday = weekday

    def moment(self, year: int) -> datetime:
        """The local wall-clock moment this rule applies in ``year``."""
        days_in_month = _calendar.monthrange(year, self.month)[1]
        first = date(year, self.month, 1)
        shift = (self.weekday - first.weekday()) % 7
        day = 1 + shift + 7 * (min(self.order, 5) - 1)
        while day > days_in_month:
            day -= 7
        return datetime.combine(date(year, self.month, day), self.at)


class RuleZone(tzinfo):
    """A ``tzinfo`` from a bias (minutes, UTC = local + bias) and optional DST rules."""

    def __init__(self, bias: int, standard: _Rule | None, daylight: _Rule | None) -> None:
        self.bias = bias
        self.standard = standard
        self.daylight = daylight

    def _in_dst(self, local: datetime) -> bool:
        if self.standard is None or self.daylight is None or not self.daylight.month:
            return False
        if self.daylight.bias == self.standard.bias:
            return False
        naive = local.replace(tzinfo=None)
        start = self.daylight.moment(naive.year)
        end = self.standard.moment(naive.year)
        if start < end:
            return start <= naive < end
        return naive >= start or naive < end

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(minutes=-self.bias)
        extra = 0
        if self.daylight is not None and self._in_dst(dt):
            extra = self.daylight.bias
        elif self.standard is not None:
            extra = self.standard.bias
        return timedelta(minutes=-(self.bias + extra))

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is not None and self.daylight is not None and self._in_dst(dt):
            return timedelta(minutes=-self.daylight.bias)
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "EWS"

    def fromutc(self, dt: datetime) -> datetime:
        standard = dt + timedelta(
            minutes=-(self.bias + (self.standard.bias if self.standard else 0))
        )
        if self.daylight is not None and self._in_dst(standard):
            return dt + timedelta(minutes=-(self.bias + self.daylight.bias))
        return standard


def _parse_rule(node: Any) -> _Rule | None:
    if node is None:
        return None
    try:
        weekday = WEEKDAYS.index(text_of(node, t("DayOfWeek"), "Sunday") or "Sunday")
        clock = time.fromisoformat((text_of(node, t("Time"), "00:00:00") or "00:00:00")[:8])
        return _Rule(
            bias=int(text_of(node, t("Bias"), "0") or "0"),
            at=clock,
            order=int(text_of(node, t("DayOrder"), "1") or "1"),
            month=int(text_of(node, t("Month"), "0") or "0"),
            weekday=weekday,
        )
    except ValueError:
        return None


def parse_serializable_zone(node: Any) -> tzinfo:
    """The availability service's ``t:TimeZone`` as a ``tzinfo`` (UTC when absent)."""
    if node is None:
        return UTC
    bias = int(text_of(node, t("Bias"), "0") or "0")
    return RuleZone(
        bias,
        _parse_rule(child(node, t("StandardTime"))),
        _parse_rule(child(node, t("DaylightTime"))),
    )


def serializable_zone(parent: Any, windows_id: str, year: int) -> Any:
    """``t:TimeZone`` (availability shape) for a Windows zone, as WorkingHours reports it."""
    zone = to_zone(windows_id)
    changes = _transitions(zone, year)
    node = sub(parent, t("TimeZone"))
    if len(changes) < 2:
        offset = datetime(year, 1, 15, tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)
        sub(node, t("Bias"), -int(offset.total_seconds() // 60))
        for tag in ("StandardTime", "DaylightTime"):
            rule = sub(node, t(tag))
            sub(rule, t("Bias"), 0)
            sub(rule, t("Time"), "00:00:00")
            sub(rule, t("DayOrder"), 0)
            sub(rule, t("Month"), 0)
            sub(rule, t("DayOfWeek"), "Sunday")
        return node
    standard = min(changes[0][1], changes[0][2])
    daylight = max(changes[0][1], changes[0][2])
    base = -int(standard.total_seconds() // 60)
    sub(node, t("Bias"), base)
    rules: dict[str, tuple[int, int, int, time]] = {}
    for instant, before, after in changes[:2]:
        rules["DaylightTime" if after == daylight else "StandardTime"] = _rule(instant, before)
    for tag in ("StandardTime", "DaylightTime"):
        month, weekday, occurrence, at = rules[tag]
        rule = sub(node, t(tag))
        extra = 0 if tag == "StandardTime" else -int((daylight - standard).total_seconds() // 60)
        sub(rule, t("Bias"), extra)
        sub(rule, t("Time"), at.strftime("%H:%M:%S"))
        sub(rule, t("DayOrder"), 5 if occurrence == -1 else occurrence)
        sub(rule, t("Month"), month)
        sub(rule, t("DayOfWeek"), WEEKDAYS[weekday])
    return node
