"""Recurring series: patterns, ranges, exceptions, cancelled occurrences, DST."""

from __future__ import annotations

from datetime import date

import pytest

from m365sim.graph.calendar.exceptions import InvalidRecurrence
from m365sim.graph.calendar.recurrence import Recurrence


def dates(pattern: dict, range_: dict, limit: int = 50) -> list[date]:
    rec = Recurrence.from_json(
        {"pattern": pattern, "range": range_},
        default_time_zone="UTC",
        default_start=date(2030, 1, 1),
    )
    out = []
    for day in rec.dates():
        out.append(day)
        if len(out) >= limit:
            break
    return out


def test_weekly_on_two_days_every_other_week() -> None:
    found = dates(
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["tuesday", "thursday"],
            "firstDayOfWeek": "monday",
        },
        {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 5},
    )
    assert found == [
        date(2030, 1, 1),
        date(2030, 1, 3),
        date(2030, 1, 15),
        date(2030, 1, 17),
        date(2030, 1, 29),
    ]


def test_daily_until_end_date_is_inclusive() -> None:
    found = dates(
        {"type": "daily", "interval": 3},
        {"type": "endDate", "startDate": "2030-01-01", "endDate": "2030-01-10"},
    )
    assert found == [date(2030, 1, 1), date(2030, 1, 4), date(2030, 1, 7), date(2030, 1, 10)]


def test_absolute_monthly_falls_back_to_the_last_day() -> None:
    found = dates(
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
        {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 4},
    )
    assert found == [date(2030, 1, 31), date(2030, 2, 28), date(2030, 3, 31), date(2030, 4, 30)]


def test_relative_monthly_last_friday_and_yearly() -> None:
    found = dates(
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
        {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 3},
    )
    assert found == [date(2030, 1, 25), date(2030, 2, 22), date(2030, 3, 29)]
    thanksgiving = dates(
        {
            "type": "relativeYearly",
            "interval": 1,
            "daysOfWeek": ["thursday"],
            "index": "fourth",
            "month": 11,
        },
        {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 2},
    )
    assert thanksgiving == [date(2030, 11, 28), date(2031, 11, 27)]


def test_no_end_series_is_unbounded() -> None:
    assert (
        len(dates({"type": "daily"}, {"type": "noEnd", "startDate": "2030-01-01"}, limit=400))
        == 400
    )


@pytest.mark.parametrize(
    "pattern, range_",
    [
        ({"type": "weekly"}, {"type": "noEnd", "startDate": "2030-01-01"}),
        ({"type": "hourly"}, {"type": "noEnd", "startDate": "2030-01-01"}),
        ({"type": "daily"}, {"type": "numbered", "startDate": "2030-01-01"}),
        (
            {"type": "daily"},
            {"type": "endDate", "startDate": "2030-01-05", "endDate": "2030-01-01"},
        ),
        ({"type": "absoluteMonthly"}, {"type": "noEnd", "startDate": "2030-01-01"}),
    ],
)
def test_invalid_recurrences_are_refused(pattern: dict, range_: dict) -> None:
    with pytest.raises(InvalidRecurrence):
        dates(pattern, range_)


WEEKLY_STANDUP = {
    "subject": "Pipeline standup",
    "start": {"dateTime": "2030-01-07T09:00:00", "timeZone": "Pacific Standard Time"},
    "end": {"dateTime": "2030-01-07T09:30:00", "timeZone": "Pacific Standard Time"},
    "recurrence": {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 6},
    },
}


def view(client, start: str, end: str, **headers: str) -> list[dict]:
    response = client.get(
        "/me/calendarView",
        params={"startDateTime": start, "endDateTime": end, "$top": "100"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["value"]


def test_weekly_series_with_an_exception_and_a_cancelled_occurrence(graph) -> None:
    lee = graph("lee@contoso.com")
    master = lee.post("/me/events", json=WEEKLY_STANDUP).json()
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["range"]["recurrenceTimeZone"] == "Pacific Standard Time"
    occurrences = view(lee, "2030-01-01T00:00:00Z", "2030-03-01T00:00:00Z")
    assert [o["start"]["dateTime"] for o in occurrences] == [
        f"2030-{d}T17:00:00.0000000" for d in ("01-07", "01-14", "01-21", "01-28", "02-04", "02-11")
    ]
    assert {o["type"] for o in occurrences} == {"occurrence"}
    assert {o["seriesMasterId"] for o in occurrences} == {master["id"]}
    # Graph documents iCalUId as "different for each occurrence in a recurring series";
    # the series-wide id is uid. Exchange marks the instance date in the id (bytes 16-19).
    uids = [o["iCalUId"] for o in occurrences]
    assert len(set(uids)) == len(uids) and master["iCalUId"] not in uids
    assert {o["uid"] for o in occurrences} == {master["uid"]} == {master["iCalUId"]}
    assert uids[0][32:40] == "07EE0107"  # 2030-01-07
    assert {u[:32] + "00000000" + u[40:] for u in uids} == {master["iCalUId"]}

    second, third = occurrences[1], occurrences[2]
    moved = lee.patch(
        f"/me/events/{second['id']}",
        json={
            "start": {"dateTime": "2030-01-15T11:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2030-01-15T11:30:00", "timeZone": "Pacific Standard Time"},
        },
    ).json()
    assert moved["type"] == "exception" and moved["id"] == second["id"]
    assert moved["iCalUId"] == second["iCalUId"]  # still that day's instance
    assert lee.delete(f"/me/events/{third['id']}").status_code == 204

    after = view(lee, "2030-01-01T00:00:00Z", "2030-03-01T00:00:00Z")
    assert [(o["start"]["dateTime"][:16], o["type"]) for o in after] == [
        ("2030-01-07T17:00", "occurrence"),
        ("2030-01-15T19:00", "exception"),
        ("2030-01-28T17:00", "occurrence"),
        ("2030-02-04T17:00", "occurrence"),
        ("2030-02-11T17:00", "occurrence"),
    ]
    assert lee.get(f"/me/events/{third['id']}").status_code == 404
    instances = lee.get(
        f"/me/events/{master['id']}/instances",
        params={"startDateTime": "2030-01-10T00:00:00Z", "endDateTime": "2030-01-20T00:00:00Z"},
    ).json()["value"]
    assert [i["type"] for i in instances] == ["exception"]
    # /events lists the master only, never its occurrences
    assert [e["type"] for e in lee.get("/me/events").json()["value"]] == ["seriesMaster"]


def test_series_keeps_local_time_across_a_dst_change(graph) -> None:
    lee = graph("lee@contoso.com")
    lee.post(
        "/me/events",
        json={
            **WEEKLY_STANDUP,
            "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2030-03-04T09:30:00", "timeZone": "Pacific Standard Time"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "endDate", "startDate": "2030-03-04", "endDate": "2030-03-18"},
            },
        },
    )
    utc = [
        o["start"]["dateTime"] for o in view(lee, "2030-03-01T00:00:00Z", "2030-04-01T00:00:00Z")
    ]
    # US daylight saving starts 2030-03-10: 09:00 PST = 17:00 UTC, 09:00 PDT = 16:00 UTC
    assert utc == [
        "2030-03-04T17:00:00.0000000",
        "2030-03-11T16:00:00.0000000",
        "2030-03-18T16:00:00.0000000",
    ]
    local = view(
        lee,
        "2030-03-01T00:00:00Z",
        "2030-04-01T00:00:00Z",
        Prefer='outlook.timezone="Pacific Standard Time"',
    )
    assert {o["start"]["dateTime"][11:16] for o in local} == {"09:00"}


def test_monthly_series_in_calendar_view(graph) -> None:
    lee = graph("lee@contoso.com")
    lee.post(
        "/me/events",
        json={
            "subject": "Month-end forecast",
            "start": {"dateTime": "2030-01-31T15:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-31T16:00:00", "timeZone": "UTC"},
            "recurrence": {
                "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
                "range": {"type": "noEnd", "startDate": "2030-01-31"},
            },
        },
    )
    found = view(lee, "2030-02-01T00:00:00Z", "2030-06-01T00:00:00Z")
    assert [o["start"]["dateTime"][:10] for o in found] == [
        "2030-02-28",
        "2030-03-31",
        "2030-04-30",
        "2030-05-31",
    ]


def test_changing_the_series_time_drops_its_exceptions(graph) -> None:
    lee = graph("lee@contoso.com")
    master = lee.post("/me/events", json=WEEKLY_STANDUP).json()
    first = view(lee, "2030-01-01T00:00:00Z", "2030-01-10T00:00:00Z")[0]
    lee.patch(f"/me/events/{first['id']}", json={"subject": "Special"})
    lee.patch(
        f"/me/events/{master['id']}",
        json={
            "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2030-01-07T10:30:00", "timeZone": "Pacific Standard Time"},
        },
    )
    found = view(lee, "2030-01-01T00:00:00Z", "2030-03-01T00:00:00Z")
    assert len(found) == 6
    assert {o["subject"] for o in found} == {"Pipeline standup"}
    assert {o["start"]["dateTime"][11:16] for o in found} == {"18:00"}
