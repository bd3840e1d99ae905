"""An invitee books a meeting through the public page in a real browser (Debian's chromium),
under the dashboard's Content-Security-Policy (no inline script)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.scheduling_world import SchedulingWorld, live_server

pytestmark = pytest.mark.browser


@pytest.fixture
def server_url(world: SchedulingWorld) -> Iterator[str]:
    # install_pages added the dashboard's security headers (CSP without inline script).
    with live_server(world.app) as url:
        yield url


def test_invitee_books_through_the_public_page(
    world: SchedulingWorld, server_url: str, tmp_path: Path, chromium_browser: Any
) -> None:
    from playwright.sync_api import expect

    world.meeting_type(
        "intro",
        ["adele@contoso.com"],
        name="Intro call",
        questions=[{"label": "Company", "required": True}],
    )
    errors: list[str] = []
    context = chromium_browser.new_context(timezone_id="Europe/Berlin", locale="en-GB")
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{server_url}/book/{world.organization.slug}/intro")
        # booking.js picked the browser's time zone.
        page.wait_for_url("**tz=Europe%2FBerlin**")
        expect(page.locator("select#tz")).to_have_value("Europe/Berlin")
        expect(page.get_by_role("heading", name="Intro call")).to_be_visible()
        page.screenshot(path=str(tmp_path / "booking-page.png"), full_page=True)
        slot = page.locator("a.slot").first
        if slot.count() == 0:  # late on a Friday: the next week has times
            page.locator("[data-next-week]").click()
            slot = page.locator("a.slot").first
        chosen = slot.get_attribute("data-slot")
        assert chosen is not None and chosen.endswith(("+01:00", "+02:00"))  # Berlin time
        slot.click()
        page.get_by_label("Your name").fill("Pat Buyer")
        page.get_by_label("Email").fill("pat@fabrikam.example")
        page.get_by_role("button", name="Book meeting").click()
        expect(page.get_by_text("Please answer: Company")).to_be_visible()
        page.get_by_label("Company (required)").fill("Fabrikam")
        page.get_by_role("button", name="Book meeting").click()
        expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
        expect(page.get_by_text("Europe/Berlin".replace("_", " "))).to_be_visible()
        expect(page.get_by_role("link", name="Cancel")).to_be_visible()
        page.screenshot(path=str(tmp_path / "booking-confirmed.png"))
    finally:
        context.close()
    assert not [e for e in errors if "Content Security Policy" in e]
    events = [e for e in world.sim_events("adele@contoso.com") if "Intro call" in e["subject"]]
    assert len(events) == 1
    assert [a["emailAddress"]["address"] for a in events[0]["attendees"]] == [
        "pat@fabrikam.example"
    ]
    assert len(world.crm_events()) == 1
