"""A crowd on the public booking page never takes the server down: fifty anonymous visitors
(from fifty addresses, through a trusted reverse proxy) booking one slot at once through a
real server get one booking and clean refusals (taken, or "too many requests to this page,
try again in N seconds"), never an error, while a signed-in admin keeps working at normal
speed and the sign-in page keeps answering."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from m365sync.auth.service import start_session
from m365sync.organizations.models import Member, Role
from m365sync.scheduling.models import BookingStatus
from m365sync.web.security import RateLimits
from support.scheduling_world import SchedulingWorld, book_form, live_server, local, next_weekday

VISITORS = 50
ADMIN_PAGES = ("/scheduling/admin", "/admin/members", "/scheduling")


@pytest.fixture
def server_url(world: SchedulingWorld) -> Iterator[str]:
    with live_server(world.app) as url:
        yield url


def admin_cookie(world: SchedulingWorld) -> dict[str, str]:
    with world.database.session() as session:
        member = session.get(Member, world.members["lee@contoso.com"])
        assert member is not None
        member.role = Role.ADMIN
        new = start_session(session, member, sign_in_method="password")
    # The live server listens on 127.0.0.1, a secure context: the cookie has the __Host- name.
    return {"__Host-m365sync_session": new.token}


def test_fifty_visitors_book_one_slot_while_an_admin_loads_pages(
    world: SchedulingWorld, server_url: str
) -> None:
    proxied = world.settings.model_copy(update={"trusted_proxies": ("127.0.0.1",)})
    world.app.state.rate_limits = RateLimits.from_settings(proxied)
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    start = local(next_weekday(1), 10)
    path = f"/book/{world.organization.slug}/intro"
    cookies = admin_cookie(world)
    with httpx.Client(base_url=server_url, cookies=cookies, timeout=60) as warm:
        assert warm.get("/scheduling/admin").status_code == 200  # first MSAL app built

    barrier = threading.Barrier(VISITORS + 1)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def visitor(number: int) -> None:
        address = f"198.51.100.{number + 1}"
        with httpx.Client(
            base_url=server_url, timeout=120, headers={"x-forwarded-for": address}
        ) as client:
            barrier.wait()
            answer = book_form(
                client, path, start, email=f"visitor{number}@fabrikam.example", name=f"V{number}"
            )
        with lock:
            answers.append(answer)

    page_loads: list[tuple[str, int, float]] = []

    def admin() -> None:
        with (
            httpx.Client(base_url=server_url, cookies=cookies, timeout=120) as client,
            httpx.Client(base_url=server_url, timeout=120) as anonymous,
        ):
            barrier.wait()
            while True:
                for browser, page in [(client, p) for p in ADMIN_PAGES] + [(anonymous, "/sign-in")]:
                    began = time.monotonic()
                    status = browser.get(page).status_code
                    page_loads.append((page, status, time.monotonic() - began))
                with lock:
                    if len(answers) == VISITORS:
                        return

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(VISITORS)]
    threads.append(threading.Thread(target=admin))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    statuses = Counter(a.status_code for a in answers)
    assert len(answers) == VISITORS
    assert statuses[303] == 1, statuses  # booked: on to the confirmation page
    # Thirty bookings a minute for one booking page; the other visitors are asked to wait.
    assert statuses[429] == VISITORS - 30, statuses
    assert set(statuses) <= {303, 409, 429}, {
        a.status_code: a.text[-300:] for a in answers if a.status_code not in (303, 409, 429)
    }
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert "Try again in" in answer.text
        if answer.status_code == 409:
            assert "no longer available" in answer.text
    confirmed = [b for b in world.bookings() if b.status is BookingStatus.CONFIRMED]
    assert len(confirmed) == 1 and len(world.bookings()) == 1
    assert len([e for e in world.sim_events("adele@contoso.com") if "Intro" in e["subject"]]) == 1

    assert page_loads, "the admin loaded no page while the visitors booked"
    assert all(status == 200 for _, status, _ in page_loads), page_loads
    slowest = max(page_loads, key=lambda load: load[2])
    assert slowest[2] < 2.0, f"{slowest[0]} took {slowest[2]:.1f} s under load"
