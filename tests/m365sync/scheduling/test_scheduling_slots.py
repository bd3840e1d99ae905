"""Open slots from real calendars (m365sim): busy, recurring, buffers, zones, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from support.scheduling_world import (
    PACIFIC,
    SchedulingWorld,
    graph_time,
    local,
    local_times,
    next_weekday,
    recurring_weekdays,
    slots_on_page,
)


def page(client: TestClient, world: SchedulingWorld, slug: str, day: date, tz: str) -> str:
    response = client.get(
        f"/book/{world.organization.slug}/{slug}", params={"tz": tz, "day": day.isoformat()}
    )
    assert response.status_code == 200, response.text
    return response.text


def test_slots_exclude_busy_recurring_and_buffered_time(
    world: SchedulingWorld, client: TestClient
) -> None:
    monday = next_weekday(0)
    adele = "adele@contoso.com"
    world.add_event(
        adele, **recurring_weekdays("Standup", monday - timedelta(days=7), "09:00", "09:30")
    )
    world.add_event(
        adele,
        subject="Customer call",
        start=graph_time(local(monday, 13)),
        end=graph_time(local(monday, 14)),
        sendInvitations=False,
    )
    world.add_event(
        adele,
        subject="Maybe",
        showAs="tentative",
        start=graph_time(local(monday, 11)),
        end=graph_time(local(monday, 11, 30)),
        sendInvitations=False,
    )
    world.add_event(
        adele,
        subject="Focus (free)",
        showAs="free",
        start=graph_time(local(monday, 15)),
        end=graph_time(local(monday, 16)),
        sendInvitations=False,
    )
    world.add_event(
        adele,
        subject="At the client site",
        showAs="workingElsewhere",
        start=graph_time(local(monday, 16)),
        end=graph_time(local(monday, 17)),
        sendInvitations=False,
    )
    world.meeting_type("intro", [adele], duration_minutes=30, buffer_after_minutes=15)

    html = page(client, world, "intro", monday, "America/Los_Angeles")
    monday_times = local_times(html, monday)
    # Outlook's default working hours (08:00-17:00 Pacific), in 30-minute steps, minus:
    # 08:30 (its 15-min buffer runs into the standup), 09:00 (standup), 10:30 (buffer into
    # the tentative meeting), 11:00 (tentative), 12:30 (buffer into 13:00), 13:00-13:30 (busy).
    assert monday_times == [
        "08:00",
        "09:30",
        "10:00",
        "11:30",
        "12:00",
        "14:00",
        "14:30",
        "15:00",
        "15:30",
        "16:00",
        "16:30",
    ]
    tuesday_times = local_times(html, monday + timedelta(days=1))
    assert "09:00" not in tuesday_times and "08:30" not in tuesday_times  # the series recurs
    assert "10:00" in tuesday_times
    assert all(d.weekday() < 5 for d in {s.date() for s in slots_on_page(html)})


def test_working_elsewhere_can_be_made_to_block(world: SchedulingWorld, client: TestClient) -> None:
    monday = next_weekday(0)
    world.add_event(
        "adele@contoso.com",
        subject="Offsite",
        showAs="workingElsewhere",
        start=graph_time(local(monday, 8)),
        end=graph_time(local(monday, 12)),
        sendInvitations=False,
    )
    world.meeting_type(
        "strict",
        ["adele@contoso.com"],
        blocking_statuses=["busy", "tentative", "oof", "workingElsewhere"],
    )
    times = local_times(page(client, world, "strict", monday, "America/Los_Angeles"), monday)
    assert times[0] == "12:00"


def test_slots_shown_in_the_invitees_time_zone(world: SchedulingWorld, client: TestClient) -> None:
    monday = next_weekday(0)
    world.meeting_type("intro", ["adele@contoso.com"], duration_minutes=60)
    pacific = slots_on_page(page(client, world, "intro", monday, "America/Los_Angeles"))
    tokyo = slots_on_page(page(client, world, "intro", monday, "Asia/Tokyo"))
    first_pacific = next(s for s in pacific if s.date() == monday)
    assert first_pacific.strftime("%H:%M") == "08:00"
    # The same instant is Tuesday 00:00 or 01:00 in Tokyo (no DST there).
    same = [s for s in tokyo if s == first_pacific]
    assert same and same[0].astimezone(ZoneInfo("Asia/Tokyo")).date() == monday + timedelta(days=1)


def test_minimum_notice_hides_times_too_soon(world: SchedulingWorld, client: TestClient) -> None:
    world.meeting_type("soon", ["adele@contoso.com"], minimum_notice_minutes=60 * 24 * 3)
    today = datetime.now(UTC).astimezone(PACIFIC).date()
    offered = slots_on_page(page(client, world, "soon", today, "America/Los_Angeles"))
    assert offered, "there are open times later in the week"
    assert min(offered) >= datetime.now(UTC) + timedelta(days=3) - timedelta(minutes=1)


def _next_us_dst_change() -> date:
    day = datetime.now(UTC).astimezone(PACIFIC).date() + timedelta(days=1)
    while True:
        before = local(day - timedelta(days=1), 12).utcoffset()
        if local(day, 12).utcoffset() != before:
            return day
        day += timedelta(days=1)


def test_dst_change_week_keeps_working_hours_and_recurring_meetings_local(
    world: SchedulingWorld, client: TestClient
) -> None:
    change = _next_us_dst_change()  # a Sunday
    friday, monday = change - timedelta(days=2), change + timedelta(days=1)
    world.add_event(
        "adele@contoso.com",
        **recurring_weekdays("Pipeline review", friday - timedelta(days=14), "10:00", "11:00"),
    )
    world.meeting_type("dst", ["adele@contoso.com"], duration_minutes=60, horizon_days=365)
    html = page(client, world, "dst", friday, "America/Los_Angeles")
    for day in (friday, monday):
        assert local_times(html, day) == [
            "08:00",
            "09:00",
            "11:00",
            "12:00",
            "13:00",
            "14:00",
            "15:00",
            "16:00",
        ], day
    starts = slots_on_page(page(client, world, "dst", friday, "UTC"))
    first = {
        d: min(s for s in starts if s.astimezone(PACIFIC).date() == d) for d in (friday, monday)
    }
    for day in (friday, monday):
        offset_hours = local(day, 8).utcoffset() / timedelta(hours=1)  # type: ignore[operator]
        assert first[day].astimezone(UTC).hour == (8 - offset_hours) % 24
    # The change moved 08:00 Pacific by exactly one hour in UTC.
    assert abs(first[friday].astimezone(UTC).hour - first[monday].astimezone(UTC).hour) == 1
