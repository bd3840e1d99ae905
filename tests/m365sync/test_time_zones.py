"""Times as people read them: one format with the zone named, and zones to pick from grouped
by region with their offset today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from m365sync.time_zones import (
    format_day,
    format_span,
    format_when,
    is_time_zone,
    offset_label,
    zone_choices,
    zone_label,
)

BERLIN = ZoneInfo("Europe/Berlin")


def test_an_instant_is_shown_in_the_viewers_zone_with_the_zone_named() -> None:
    winter = datetime(2025, 3, 12, 13, 5, tzinfo=UTC)
    summer = datetime(2025, 7, 1, 6, 30, tzinfo=UTC)
    assert format_when(winter, BERLIN) == "Wed 12 Mar 2025, 14:05 CET"
    assert format_when(summer, BERLIN) == "Tue 1 Jul 2025, 08:30 CEST"
    assert format_when(winter, UTC) == "Wed 12 Mar 2025, 13:05 UTC"
    # A zone without a common abbreviation is named by its offset.
    assert format_when(winter, ZoneInfo("Asia/Dubai")) == "Wed 12 Mar 2025, 17:05 UTC+04"


def test_a_meeting_and_a_day_use_the_same_words() -> None:
    start = datetime(2025, 3, 12, 13, 0, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")
    assert format_span(start, start + timedelta(minutes=30), new_york) == (
        "Wed 12 Mar 2025, 09:00–09:30 EDT"
    )
    late = datetime(2025, 3, 12, 22, 30, tzinfo=UTC)
    assert format_span(late, late + timedelta(hours=2), BERLIN) == (
        "Wed 12 Mar 2025, 23:30 CET – Thu 13 Mar 2025, 01:30 CET"
    )
    assert format_day(date(2025, 3, 12)) == "Wed 12 Mar 2025"
    assert format_day(late, BERLIN) == "Wed 12 Mar 2025"
    assert format_day(datetime(2025, 3, 12, 23, 30, tzinfo=UTC), BERLIN) == "Thu 13 Mar 2025"


def test_the_picker_lists_common_zones_first_then_each_region_by_offset() -> None:
    groups = zone_choices(datetime(2025, 1, 15, tzinfo=UTC))
    assert groups[0].label == "Common"
    assert [g.label for g in groups[1:4]] == ["Africa", "America", "Antarctica"]
    common = {z.name: z.label for z in groups[0].zones}
    assert common["Europe/Berlin"] == "(UTC+01:00) Berlin"
    assert common["America/New_York"] == "(UTC-05:00) New York"
    assert common["UTC"] == "(UTC+00:00) Coordinated Universal Time"
    europe = next(g for g in groups if g.label == "Europe").zones
    offsets = [z.offset for z in europe]
    assert offsets == sorted(offsets)
    names = {z.name for g in groups for z in g.zones}
    assert "Asia/Kolkata" in names and "America/Argentina/Buenos_Aires" in names
    assert not any(n.startswith(("Etc/", "US/")) for n in names)  # legacy aliases: not listed
    # Offsets follow daylight saving time.
    summer = zone_choices(datetime(2025, 7, 15, tzinfo=UTC))[0].zones
    assert {z.name: z.label for z in summer}["Europe/Berlin"] == "(UTC+02:00) Berlin"


def test_zone_names_and_labels() -> None:
    assert is_time_zone("Europe/Berlin") and is_time_zone("UTC") and is_time_zone("US/Eastern")
    assert not is_time_zone("Mars/Olympus_Mons") and not is_time_zone("") and not is_time_zone(None)
    assert offset_label(timedelta(hours=-3, minutes=-30)) == "UTC-03:30"
    assert offset_label(timedelta(hours=5, minutes=45)) == "UTC+05:45"
    assert zone_label("America/Argentina/Buenos_Aires", datetime(2025, 1, 1, tzinfo=UTC)) == (
        "(UTC-03:00) Argentina / Buenos Aires"
    )
