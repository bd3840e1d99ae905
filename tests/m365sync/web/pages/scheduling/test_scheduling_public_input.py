"""What an anonymous visitor can send the public booking pages: a time no page offers (year
0001, year 9999, a day beyond the calendar) is a clear refusal naming the fix, never a
server error; and a booking page or link opened too often answers 429 with the time to
wait."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from m365sync.web.security import RateLimits
from support.scheduling_world import SchedulingWorld, book_form, links_on, local, next_weekday


def book_path(world: SchedulingWorld) -> str:
    return f"/book/{world.organization.slug}/intro"


def post_start(client: TestClient, path: str, start: str) -> str:
    response = client.post(
        path,
        data={"start": start, "tz": "UTC", "name": "Pat", "email": "pat@fabrikam.example"},
        follow_redirects=False,
    )
    return f"{response.status_code} {response.text}"


def test_year_0001_and_9999_are_refused_with_the_fix(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    path = book_path(world)

    answer = post_start(client, path, "0001-01-01T00:00:00+00:00")
    assert answer.startswith("422 ")
    assert "0001-01-01 is outside the dates this page books" in answer
    assert "from today up to 365 days ahead" in answer and "pick a time from the list" in answer
    # Not even a UTC time: year 0001 east of Greenwich, year 9999 west of it.
    for start in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:30:00-05:00"):
        answer = post_start(client, path, start)
        assert answer.startswith("422 ") and "Pick a time from the list." in answer
    answer = post_start(client, path, "9999-12-31T10:00:00+00:00")
    assert answer.startswith("422 ") and "9999-12-31 is outside the dates" in answer
    assert world.bookings() == []

    # The form for such a time goes back to the open times; the page for a far day shows
    # this week.
    form = client.get(
        f"{path}/book", params={"start": "0001-01-01T00:00:00-08:00"}, follow_redirects=False
    )
    assert form.status_code == 303 and urlsplit(form.headers["location"]).path == path
    assert client.get(path, params={"day": "9999-12-31"}).status_code == 200


def test_moving_a_booking_to_year_0001_is_refused_with_the_fix(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    booked = book_form(client, book_path(world), local(next_weekday(1), 10))
    assert booked.status_code == 303
    token = links_on(client.get(booked.headers["location"]).text)["reschedule"]
    moved = client.post(
        f"/book/_/reschedule/{token}",
        data={"start": "0001-01-01T09:00:00+00:00", "tz": "UTC"},
        follow_redirects=False,
    )
    assert moved.status_code == 422
    assert "0001-01-01 is outside the dates this page books" in moved.text


def test_a_booking_page_opened_too_often_asks_to_wait(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    limits = world.settings.model_copy(
        update={
            "rate_limit_booking_views_per_minute": 3,
            "rate_limit_bookings_per_minute": 2,
        }
    )
    world.app.state.rate_limits = RateLimits.from_settings(limits)
    path = book_path(world)
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(path)
    assert refused.status_code == 429
    assert "Too many booking pages were opened from your network" in refused.text
    assert f"Try again in {refused.headers['retry-after']} seconds" in refused.text

    start = local(next_weekday(2), 10)
    statuses = [
        book_form(client, path, start, email=f"p{n}@x.example").status_code for n in range(3)
    ]
    assert statuses[:2] == [303, 409] and statuses[2] == 429
    assert int(book_form(client, path, start).headers["retry-after"]) >= 1
