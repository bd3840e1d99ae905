"""The slot engine: rules x free/busy x buffers x notice x horizon x daily limit, across zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from m365sync.microsoft.scheduling import BusyBlock, FreeBusyStatus
from m365sync.scheduling.availability import (
    ROOM_BLOCKING,
    Interval,
    LocalWindow,
    Slot,
    SlotRules,
    blocking_intervals,
    choose_round_robin,
    collective_slots,
    compute_slots,
    group_by_local_day,
    merge_intervals,
    round_robin_slots,
    slot_is_open,
    slots_with_a_free_room,
)
from m365sync.scheduling.schemas import MeetingTypeInput

LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
NINE_TO_FIVE = (LocalWindow(time(9), time(17)),)
WEEKDAYS = {d: NINE_TO_FIVE for d in range(5)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rules(**overrides: object) -> SlotRules:
    values: dict[str, object] = {
        "duration": timedelta(minutes=30),
        "time_zone": LA,
        "weekly": WEEKDAYS,
    }
    values.update(overrides)
    return SlotRules(**values)  # type: ignore[arg-type]


def local_starts(slots: list[Slot], zone: ZoneInfo) -> list[str]:
    return [s.start.astimezone(zone).strftime("%a %H:%M") for s in slots]


# A Monday in January (no DST anywhere near): 2026-01-12.
MONDAY = date(2026, 1, 12)
SUNDAY_NIGHT = utc(2026, 1, 12, 0, 0)  # Sunday 16:00 in Los Angeles


def one_day(day: date, zone: ZoneInfo = LA) -> dict[str, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone)
    return {"range_start": start, "range_end": start + timedelta(days=1)}


def test_working_hours_give_slots_in_the_reps_time_zone() -> None:
    slots = compute_slots(rules(), [], now=SUNDAY_NIGHT, **one_day(MONDAY))
    assert len(slots) == 16
    assert slots[0].start == utc(2026, 1, 12, 17, 0)  # 09:00 PST
    assert slots[-1].end == utc(2026, 1, 13, 1, 0)  # 17:00 PST
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)


def test_weekend_without_rules_has_no_slots() -> None:
    saturday = date(2026, 1, 17)
    assert compute_slots(rules(), [], now=SUNDAY_NIGHT, **one_day(saturday)) == []


def test_interval_between_starts_differs_from_duration() -> None:
    slots = compute_slots(
        rules(duration=timedelta(minutes=60), interval=timedelta(minutes=15)),
        [],
        now=SUNDAY_NIGHT,
        **one_day(MONDAY),
    )
    # 09:00, 09:15, ... 16:00: the last hour-long meeting ends at 17:00.
    assert len(slots) == 29
    assert local_starts(slots, LA)[-1] == "Mon 16:00"


def test_busy_time_removes_overlapping_slots_only() -> None:
    busy = [Interval(utc(2026, 1, 12, 18, 0), utc(2026, 1, 12, 19, 0))]  # 10:00-11:00 PST
    slots = compute_slots(rules(), busy, now=SUNDAY_NIGHT, **one_day(MONDAY))
    starts = local_starts(slots, LA)
    assert "Mon 09:30" in starts
    assert "Mon 10:00" not in starts and "Mon 10:30" not in starts
    assert "Mon 11:00" in starts


def test_partial_overlap_blocks_the_slot() -> None:
    busy = [Interval(utc(2026, 1, 12, 17, 10), utc(2026, 1, 12, 17, 20))]  # 09:10-09:20
    slots = compute_slots(rules(), busy, now=SUNDAY_NIGHT, **one_day(MONDAY))
    assert local_starts(slots, LA)[0] == "Mon 09:30"


def test_buffers_keep_distance_from_busy_time() -> None:
    busy = [Interval(utc(2026, 1, 12, 18, 0), utc(2026, 1, 12, 19, 0))]  # 10:00-11:00
    slots = compute_slots(
        rules(buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=30)),
        busy,
        now=SUNDAY_NIGHT,
        **one_day(MONDAY),
    )
    starts = local_starts(slots, LA)
    # 09:30 would end at 10:00 but needs 30 min after → refused; 09:00 ends 09:30 +30 = 10:00 ok.
    assert "Mon 09:00" in starts
    assert "Mon 09:30" not in starts
    # 11:00 needs 15 min before → 10:45 overlaps the meeting; 11:30 is fine.
    assert "Mon 11:00" not in starts
    assert "Mon 11:30" in starts


def test_buffers_may_reach_outside_working_hours() -> None:
    slots = compute_slots(
        rules(buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=15)),
        [],
        now=SUNDAY_NIGHT,
        **one_day(MONDAY),
    )
    assert local_starts(slots, LA)[0] == "Mon 09:00"
    assert local_starts(slots, LA)[-1] == "Mon 16:30"


def test_minimum_notice() -> None:
    now = utc(2026, 1, 12, 18, 5)  # Monday 10:05 PST
    slots = compute_slots(rules(minimum_notice=timedelta(hours=2)), [], now=now, **one_day(MONDAY))
    assert local_starts(slots, LA)[0] == "Mon 12:30"


def test_past_slots_are_never_offered() -> None:
    now = utc(2026, 1, 12, 18, 5)
    slots = compute_slots(rules(), [], now=now, **one_day(MONDAY))
    assert local_starts(slots, LA)[0] == "Mon 10:30"


def test_horizon_limits_how_far_ahead() -> None:
    slots = compute_slots(rules(horizon=timedelta(days=3)), [], now=SUNDAY_NIGHT)
    days = {s.start.astimezone(LA).date() for s in slots}
    assert days == {date(2026, 1, 12), date(2026, 1, 13), date(2026, 1, 14)}
    assert max(s.start for s in slots) <= SUNDAY_NIGHT + timedelta(days=3)


def test_daily_limit_closes_a_full_day() -> None:
    counts = {MONDAY: 2}
    full = compute_slots(
        rules(daily_limit=2), [], now=SUNDAY_NIGHT, bookings_per_day=counts, **one_day(MONDAY)
    )
    assert full == []
    open_ = compute_slots(
        rules(daily_limit=3), [], now=SUNDAY_NIGHT, bookings_per_day=counts, **one_day(MONDAY)
    )
    assert len(open_) == 16


def test_date_override_replaces_or_removes_a_day() -> None:
    tuesday = MONDAY + timedelta(days=1)
    short = compute_slots(
        rules(overrides={MONDAY: (LocalWindow(time(13), time(14)),), tuesday: ()}),
        [],
        now=SUNDAY_NIGHT,
        range_start=datetime.combine(MONDAY, time(0), tzinfo=LA),
        range_end=datetime.combine(MONDAY + timedelta(days=2), time(0), tzinfo=LA),
    )
    assert local_starts(short, LA) == ["Mon 13:00", "Mon 13:30"]


def test_override_can_open_a_weekend_day() -> None:
    saturday = date(2026, 1, 17)
    slots = compute_slots(
        rules(overrides={saturday: (LocalWindow(time(10), time(11)),)}),
        [],
        now=SUNDAY_NIGHT,
        **one_day(saturday),
    )
    assert local_starts(slots, LA) == ["Sat 10:00", "Sat 10:30"]


def test_several_windows_per_day() -> None:
    split = {0: (LocalWindow(time(9), time(10)), LocalWindow(time(14), time(15)))}
    slots = compute_slots(rules(weekly=split), [], now=SUNDAY_NIGHT, **one_day(MONDAY))
    assert local_starts(slots, LA) == ["Mon 09:00", "Mon 09:30", "Mon 14:00", "Mon 14:30"]


def test_window_until_midnight() -> None:
    late = {0: (LocalWindow(time(23), time(0)),)}
    slots = compute_slots(rules(weekly=late), [], now=SUNDAY_NIGHT, **one_day(MONDAY))
    assert local_starts(slots, LA) == ["Mon 23:00", "Mon 23:30"]
    assert slots[-1].end.astimezone(LA) == datetime(2026, 1, 13, 0, 0, tzinfo=LA)


def test_invitee_in_another_zone_sees_the_same_instants_on_their_own_dates() -> None:
    slots = compute_slots(rules(), [], now=SUNDAY_NIGHT, **one_day(MONDAY))
    grouped = group_by_local_day(slots, TOKYO)
    # 09:00-17:00 PST Monday is 02:00-10:00 JST Tuesday.
    assert list(grouped) == [date(2026, 1, 13)]
    assert grouped[date(2026, 1, 13)][0].start.astimezone(TOKYO).hour == 2


def test_late_afternoon_slots_fall_on_the_next_utc_day() -> None:
    slots = compute_slots(rules(), [], now=SUNDAY_NIGHT, **one_day(MONDAY))
    by_utc_day = group_by_local_day(slots, ZoneInfo("UTC"))
    assert list(by_utc_day) == [date(2026, 1, 12), date(2026, 1, 13)]


# -- daylight-saving changes ---------------------------------------------------------------
# US clocks spring forward on Sunday 2026-03-08 and fall back on Sunday 2026-11-01;
# European clocks on 2026-03-29 and 2026-10-25.


def test_dst_week_keeps_wall_clock_hours_in_the_reps_zone() -> None:
    now = utc(2026, 3, 5, 0, 0)
    slots = compute_slots(
        rules(),
        [],
        now=now,
        range_start=datetime(2026, 3, 6, tzinfo=LA),
        range_end=datetime(2026, 3, 10, tzinfo=LA),
    )
    firsts = {d: s[0].start for d, s in group_by_local_day(slots, LA).items()}
    assert firsts == {
        date(2026, 3, 6): utc(2026, 3, 6, 17, 0),  # Friday 09:00 PST = UTC-8
        date(2026, 3, 9): utc(2026, 3, 9, 16, 0),  # Monday 09:00 PDT = UTC-7
    }
    assert all(len(s) == 16 for s in group_by_local_day(slots, LA).values())


def test_dst_week_seen_from_a_zone_that_has_not_changed_yet() -> None:
    # Between the US and EU changes, Berlin is 8 hours ahead of Los Angeles, not 9.
    slots = compute_slots(
        rules(),
        [],
        now=utc(2026, 3, 5, 0, 0),
        range_start=datetime(2026, 3, 6, tzinfo=LA),
        range_end=datetime(2026, 3, 10, tzinfo=LA),
    )
    grouped = group_by_local_day(slots, BERLIN)
    assert grouped[date(2026, 3, 6)][0].start.astimezone(BERLIN).hour == 18
    assert grouped[date(2026, 3, 9)][0].start.astimezone(BERLIN).hour == 17


def test_busy_time_given_in_utc_lines_up_after_the_change() -> None:
    # A 09:00-10:00 PDT meeting on the Monday after the change is 16:00-17:00 UTC.
    busy = [Interval(utc(2026, 3, 9, 16, 0), utc(2026, 3, 9, 17, 0))]
    slots = compute_slots(rules(), busy, now=utc(2026, 3, 5), **one_day(date(2026, 3, 9)))
    assert local_starts(slots, LA)[0] == "Mon 10:00"


def test_spring_forward_night_is_an_hour_shorter() -> None:
    night = {6: (LocalWindow(time(0), time(4)),)}  # Sunday 00:00-04:00 local
    slots = compute_slots(rules(weekly=night), [], now=utc(2026, 3, 1), **one_day(date(2026, 3, 8)))
    assert len(slots) == 6  # 3 real hours
    assert slots[0].start == utc(2026, 3, 8, 8, 0)
    assert slots[-1].end == utc(2026, 3, 8, 11, 0)


def test_fall_back_night_is_an_hour_longer() -> None:
    night = {6: (LocalWindow(time(0), time(4)),)}
    slots = compute_slots(
        rules(weekly=night), [], now=utc(2026, 10, 25), **one_day(date(2026, 11, 1))
    )
    assert len(slots) == 10  # 5 real hours
    assert len({s.start for s in slots}) == 10
    assert slots[0].start == utc(2026, 11, 1, 7, 0)
    assert slots[-1].end == utc(2026, 11, 1, 12, 0)


def test_europe_dst_change_for_a_berlin_rep() -> None:
    slots = compute_slots(
        rules(time_zone=BERLIN),
        [],
        now=utc(2026, 3, 25),
        range_start=datetime(2026, 3, 27, tzinfo=BERLIN),
        range_end=datetime(2026, 3, 31, tzinfo=BERLIN),
    )
    firsts = [s[0].start for s in group_by_local_day(slots, BERLIN).values()]
    assert firsts == [utc(2026, 3, 27, 8, 0), utc(2026, 3, 30, 7, 0)]


# -- free/busy statuses ----------------------------------------------------------------------


def test_free_and_working_elsewhere_do_not_block_by_default() -> None:
    start, end = utc(2026, 1, 12, 17), utc(2026, 1, 12, 18)
    blocks = [BusyBlock(start, end, status) for status in FreeBusyStatus]
    blocking = {
        status for status in FreeBusyStatus if blocking_intervals([BusyBlock(start, end, status)])
    }
    assert blocking == {FreeBusyStatus.BUSY, FreeBusyStatus.TENTATIVE, FreeBusyStatus.OOF}
    assert blocking_intervals(blocks) == [Interval(start, end)]


def test_blocking_statuses_are_configurable() -> None:
    start, end = utc(2026, 1, 12, 17), utc(2026, 1, 12, 18)
    elsewhere = [BusyBlock(start, end, FreeBusyStatus.WORKING_ELSEWHERE)]
    assert blocking_intervals(elsewhere) == []
    assert blocking_intervals(elsewhere, frozenset({FreeBusyStatus.WORKING_ELSEWHERE})) == [
        Interval(start, end)
    ]
    tentative = [BusyBlock(start, end, FreeBusyStatus.TENTATIVE)]
    assert blocking_intervals(tentative, frozenset({FreeBusyStatus.BUSY})) == []


def test_an_unknown_blocking_status_is_named_with_the_ones_to_use() -> None:
    raw = {"name": "Intro", "slug": "intro", "host_member_ids": ["m1"]}
    with pytest.raises(ValidationError) as refused:
        MeetingTypeInput.model_validate({**raw, "blocking_statuses": ["busy", "away"]})
    message = refused.value.errors()[0]["msg"]
    assert message.endswith(
        "Unknown free/busy status: away. Use any of busy, tentative, oof, workingElsewhere, free."
    ), message
    chosen = ["busy", "workingElsewhere"]
    assert (
        MeetingTypeInput.model_validate({**raw, "blocking_statuses": chosen}).blocking_statuses
        == chosen
    )


def test_merge_intervals_joins_overlapping_and_touching() -> None:
    a = Interval(utc(2026, 1, 1, 9), utc(2026, 1, 1, 10))
    b = Interval(utc(2026, 1, 1, 9, 30), utc(2026, 1, 1, 11))
    c = Interval(utc(2026, 1, 1, 11), utc(2026, 1, 1, 12))
    d = Interval(utc(2026, 1, 1, 13), utc(2026, 1, 1, 14))
    assert merge_intervals([d, c, b, a]) == [Interval(a.start, c.end), d]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        Interval(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError):
        compute_slots(rules(), [], now=datetime(2026, 1, 1))


def test_slot_is_open_agrees_with_compute_slots() -> None:
    busy = [Interval(utc(2026, 1, 12, 18, 0), utc(2026, 1, 12, 19, 0))]
    assert slot_is_open(rules(), utc(2026, 1, 12, 17, 0), busy, now=SUNDAY_NIGHT)
    assert not slot_is_open(rules(), utc(2026, 1, 12, 18, 0), busy, now=SUNDAY_NIGHT)
    assert not slot_is_open(rules(), utc(2026, 1, 12, 17, 10), busy, now=SUNDAY_NIGHT)  # off-grid
    assert not slot_is_open(rules(), utc(2026, 1, 11, 17, 0), busy, now=SUNDAY_NIGHT)  # Sunday


# -- teams --------------------------------------------------------------------------------------


def test_collective_slots_need_everyone_free() -> None:
    adele = compute_slots(
        rules(),
        [Interval(utc(2026, 1, 12, 17), utc(2026, 1, 12, 18))],
        now=SUNDAY_NIGHT,
        member_id="adele",
        **one_day(MONDAY),
    )
    alex = compute_slots(
        rules(time_zone=NEW_YORK), [], now=SUNDAY_NIGHT, member_id="alex", **one_day(MONDAY)
    )
    together = collective_slots({"adele": adele, "alex": alex})
    # Alex works 09-17 Eastern (14-22 UTC), Adele 09-17 Pacific (17-01 UTC) but busy 17-18.
    assert next(s.start for s in together) == utc(2026, 1, 12, 18, 0)
    assert together[-1].end == utc(2026, 1, 12, 22, 0)
    assert all(s.member_ids == ("adele", "alex") for s in together)


def test_round_robin_slots_list_every_free_rep() -> None:
    adele = compute_slots(
        rules(),
        [Interval(utc(2026, 1, 12, 17), utc(2026, 1, 12, 18))],
        now=SUNDAY_NIGHT,
        member_id="adele",
        **one_day(MONDAY),
    )
    lee = compute_slots(rules(), [], now=SUNDAY_NIGHT, member_id="lee", **one_day(MONDAY))
    slots = round_robin_slots({"adele": adele, "lee": lee})
    assert len(slots) == 16
    assert slots[0].member_ids == ("lee",)
    assert slots[3].member_ids == ("adele", "lee")


def test_choose_round_robin_balances_by_bookings_then_recency() -> None:
    assert choose_round_robin(
        ["a", "b", "c"], {"a": 2, "b": 1, "c": 1}, {"b": utc(2026, 1, 2), "c": utc(2026, 1, 1)}
    ) == ["c", "b", "a"]
    assert choose_round_robin(["a", "b"], {}) == ["a", "b"]
    assert choose_round_robin(["a", "b"], {"a": 1}) == ["b", "a"]


# -- properties ---------------------------------------------------------------------------------

busy_strategy = st.lists(
    st.tuples(st.integers(0, 7 * 24 * 4), st.integers(1, 16)).map(
        lambda t: Interval(
            utc(2026, 3, 2) + timedelta(minutes=15 * t[0]),
            utc(2026, 3, 2) + timedelta(minutes=15 * (t[0] + t[1])),
        )
    ),
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(
    busy=busy_strategy,
    zone=st.sampled_from(
        [LA, BERLIN, TOKYO, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe")]
    ),
    duration=st.sampled_from([15, 30, 45, 60]),
    before=st.sampled_from([0, 5, 15]),
    after=st.sampled_from([0, 10, 30]),
    notice_hours=st.integers(0, 48),
)
def test_no_slot_ever_overlaps_busy_time_or_leaves_its_window(
    busy: list[Interval],
    zone: ZoneInfo,
    duration: int,
    before: int,
    after: int,
    notice_hours: int,
) -> None:
    r = rules(
        time_zone=zone,
        duration=timedelta(minutes=duration),
        buffer_before=timedelta(minutes=before),
        buffer_after=timedelta(minutes=after),
        minimum_notice=timedelta(hours=notice_hours),
        horizon=timedelta(days=14),
    )
    now = utc(2026, 3, 2, 3, 0)
    slots = compute_slots(r, busy, now=now)
    for slot in slots:
        assert slot.start >= now + r.minimum_notice
        assert slot.start <= now + r.horizon
        guarded = Interval(slot.start - r.buffer_before, slot.end + r.buffer_after)
        assert not any(guarded.overlaps(b) for b in busy)
        local_start = slot.start.astimezone(zone)
        local_end = slot.end.astimezone(zone)
        assert local_start.weekday() < 5
        assert time(9) <= local_start.time() and local_end.time() <= time(17)
        assert local_end.date() == local_start.date()
    assert len({s.start for s in slots}) == len(slots)
    assert slots == sorted(slots)


def test_a_slot_needs_one_room_free_for_its_whole_length() -> None:
    ten, half_past, eleven = utc(2026, 1, 12, 18), utc(2026, 1, 12, 18, 30), utc(2026, 1, 12, 19)
    slots = [Slot(ten, half_past), Slot(half_past, eleven)]
    huddle = blocking_intervals(
        [BusyBlock(ten, eleven, FreeBusyStatus.WORKING_ELSEWHERE)], ROOM_BLOCKING
    )
    atrium = blocking_intervals(
        [
            BusyBlock(ten - timedelta(minutes=15), ten + timedelta(minutes=15)),
            BusyBlock(half_past, eleven, FreeBusyStatus.FREE),
        ],
        ROOM_BLOCKING,
    )

    assert slots_with_a_free_room(slots, [huddle, atrium]) == [Slot(half_past, eleven)]
    assert slots_with_a_free_room(slots, [atrium, []]) == slots
    assert slots_with_a_free_room(slots, []) == []
