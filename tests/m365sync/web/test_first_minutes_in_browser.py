"""A new admin's first minutes, in a real browser (Debian's chromium) at desktop (1280 px)
and phone (375 px) width, on the demo organization as ``m365sync serve`` seeds it: what a
person sees on the members page (tiles counting members and mailboxes, items synced counted
once, first-sync progress, health charts that refresh without a reload), a role changed
only once confirmed, Exchange servers asked before saving, the service accounts' columns, a
domain of another tenant flagged, the booking page neutral to customers while the admin
sees why, and every meeting type of the organization in the admin's hands.

Screenshots of the states it reaches go to ``docs/screenshots/pages/`` with
``M365SYNC_UPDATE_SCREENSHOTS=1`` (scripts/screenshots.sh)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from m365sync.db import Database
from m365sync.db.base import utcnow
from m365sync.demo import DEMO_SIGN_INS
from m365sync.organizations import service as organizations
from m365sync.scheduling.models import MeetingKind
from m365sync.scheduling.schemas import MeetingTypeInput
from m365sync.settings import Settings
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import UnitStage
from m365sync.sync.repository import SyncRepository
from support.demo import SERVICE_APP_ID
from support.demo_org import seed_demo

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 740}}
PASSWORDS = {email: password for email, password, _ in DEMO_SIGN_INS}
MEMBERS = 7  # the demo organization's members (m365sync.demo.DEMO_MEMBERS)


@pytest.fixture
def demo(sim: Any, web_settings: Settings, database: Database, app: FastAPI) -> Database:
    """The demo organization, seeded before the server starts so its workers sync at once,
    with a team meeting type Adele and Lee host and one hosted by Pradeep, whose mailbox has
    no Exchange licence."""
    seed_demo(web_settings, database)
    with database.session() as db:
        contoso = organizations.get_organization(db, "contoso")
        host = {
            email: organizations.get_member(db, contoso, email).id
            for email in ("adele@contoso.com", "lee@contoso.com", "pradeep@contoso.com")
        }
        scheduling = app.state.scheduling.service(db)
        for slug, name, kind, hosts in (
            ("team-demo", "Team demo", MeetingKind.ROUND_ROBIN, ["adele", "lee"]),
            ("intern-chat", "Intern chat", MeetingKind.ONE_ON_ONE, ["pradeep"]),
        ):
            scheduling.create_meeting_type(
                contoso.id,
                MeetingTypeInput.model_validate(
                    {
                        "name": name,
                        "slug": slug,
                        "kind": kind,
                        "host_member_ids": [host[f"{h}@contoso.com"] for h in hosts],
                        "minimum_notice_minutes": 0,
                    }
                ),
                created_by=None,
            )
    return database


@pytest.fixture
def open_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """``open_page(email, size)``: a page of its own browser context, signed in (email None:
    a visitor)."""
    contexts: list[Any] = []

    def open_(email: str | None, size: str) -> Any:
        context = browser.new_context(viewport=SIZES[size], timezone_id="Europe/Berlin")
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.console_errors = errors
        if email:
            page.goto(f"{live_server.url}/sign-in")
            page.get_by_label("Email", exact=True).fill(email)
            page.get_by_label("Password").fill(PASSWORDS[email])
            page.get_by_role("button", name="Sign in", exact=True).click()
            page.wait_for_url(re.compile(r".*/(admin|me)/.*"))
        return page

    yield open_
    for context in contexts:
        context.close()


def _fits(page: Any) -> None:
    """Nothing wider than the window: no table or button falls off at phone width."""
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0


def _holding_a_first_sync(database: Database, email: str) -> None:
    """A first sync under way in another worker (its lease held): 200 of 1,000 items after
    10 seconds."""
    with database.session() as db:
        contoso = organizations.get_organization(db, "contoso")
        member = organizations.get_member(db, contoso, email)
        unit = SyncRepository(db).ensure_unit(member, SyncFeature.TASKS)
        unit.stage = UnitStage.INITIAL_SYNC
        unit.stage_started_at = utcnow() - timedelta(seconds=10)
        unit.lease_owner = "another-worker"
        unit.lease_expires_at = utcnow() + timedelta(hours=1)
        unit.next_run_at = utcnow() + timedelta(hours=1)
        unit.counts = {"run_items": 200, "run_expected": 1000}


def test_the_members_page_counts_people_shows_progress_and_charts_that_refresh(
    demo: Database, live_server: Any, open_page: Any, screenshot: Any
) -> None:
    _holding_a_first_sync(demo, "grady@contoso.com")
    for size in SIZES:
        page = open_page("admin@contoso.com", size)
        page.goto(f"{live_server.url}/admin/members")
        # The first sync logs mail: "Synced" counts emails, once each.
        page.wait_for_function(
            "() => /[1-9]\\d* emails?/.test(document.querySelector('table.mailboxes').innerText)",
            timeout=90_000,
        )
        tiles = " ".join(page.locator(".health-tiles").inner_text().split())
        assert f"{MEMBERS} members, {MEMBERS} mailboxes" in tiles, tiles
        mailboxes = int(re.search(r"(\d+) mailbox", tiles).group(1))  # type: ignore[union-attr]
        assert 1 <= mailboxes <= MEMBERS
        healthy = int(re.search(r"(\d+)\s+healthy", tiles).group(1))  # type: ignore[union-attr]
        assert healthy <= mailboxes  # mailboxes, not one per mailbox, not per feature

        progress = page.locator("[data-first-sync]").first.inner_text()
        assert re.match(r"^\d[\d,]* of 1,000 items · \d+ a second", progress), progress

        for title in ("Items logged", "Errors", "Throttling", "Backlog"):
            assert page.locator(".chart figcaption", has_text=title).is_visible()
        page.wait_for_function(
            "() => Number(document.querySelector('[data-chart=logged] .chart-number')"
            ".textContent) > 0",
            timeout=60_000,
        )
        assert page.locator("[data-chart=logged] rect.chart-bar").count() >= 1

        # The tiles, table and charts refresh by themselves, without reloading the page.
        page.evaluate("window.stillThisPage = true")
        page.locator("[data-health-charts]").evaluate("e => e.setAttribute('data-old', '1')")
        page.wait_for_function(
            "() => !document.querySelector('[data-health-charts][data-old]')", timeout=20_000
        )
        assert page.evaluate("window.stillThisPage") is True
        _fits(page)
        screenshot(page, f"pages/admin-members-charts-{size}")
        assert page.console_errors == []

    user = open_page("adele@contoso.com", "phone")
    user.goto(f"{live_server.url}/me/connections")
    assert user.locator(".chart figcaption", has_text="Items logged").is_visible()
    _fits(user)


def test_a_role_changes_only_when_the_admin_confirms(
    demo: Database, live_server: Any, open_page: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    # A click that navigates returns once the new page starts arriving, not once it is
    # shown: what it shows is awaited (expect), never read at once.
    for size in SIZES:
        page = open_page("admin@contoso.com", size)
        page.goto(f"{live_server.url}/admin/members")
        assert page.locator("select[name=role][data-autosubmit]").count() == 0
        page.get_by_role("link", name="Make admin (adele@contoso.com)").click()
        expect(page.get_by_role("heading", name="Make Adele Vance an admin?")).to_be_visible()
        _fits(page)
        screenshot(page, f"pages/admin-role-confirm-{size}")
        page.get_by_role("link", name="Cancel").click()
        row = page.locator("tr", has_text="adele@contoso.com").first
        assert "User" in row.inner_text()

    page = open_page("admin@contoso.com", "desktop")
    page.goto(f"{live_server.url}/admin/members")
    page.get_by_role("link", name="Make admin (adele@contoso.com)").click()
    page.get_by_role("button", name="Yes, make Adele Vance an admin").click()
    expect(page.get_by_role("status").filter(has_text="Role changed.")).to_be_visible()
    expect(page.locator("tr", has_text="adele@contoso.com").first).to_contain_text("Admin")


def test_service_accounts_exchange_tested_before_saving_and_domains_checked(
    demo: Database, live_server: Any, open_page: Any, screenshot: Any
) -> None:
    base = live_server.url
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nowhere = f"https://127.0.0.1:{probe.getsockname()[1]}/EWS/Exchange.asmx"
    for size in SIZES:
        page = open_page("admin@contoso.com", size)
        page.goto(f"{base}/admin/service-accounts")
        headers = page.locator("table.service-accounts thead").inner_text()
        for column in ("Client ID", "Tenant", "Server", "Features enabled"):
            assert column.upper() in headers.upper()
        assert SERVICE_APP_ID in page.locator("table.service-accounts tbody").inner_text()

        page.goto(f"{base}/admin/service-accounts?panel=exchange")
        page.get_by_label("EWS server URL").fill(nowhere)
        page.get_by_label("Username").fill("CONTOSO\\svc-crm")
        page.get_by_label("Password").fill("an Exchange password")
        page.get_by_label("Test mailbox").fill("adele@contoso.com")
        page.get_by_role("button", name="Save").click()
        alert = page.get_by_role("alert").first.inner_text()
        # Save runs Run Test for Exchange: its server check refuses, nothing is saved.
        assert "Not saved" in alert and "did not answer" in alert, alert
        assert "firewall" in alert
        assert "did not answer" in page.locator("#test-results").inner_text()
        screenshot(page, f"pages/admin-service-account-exchange-refused-{size}", full_page=False)
        page.goto(f"{base}/admin/service-accounts")
        assert "Exchange" not in page.locator("table.service-accounts tbody").inner_text()

        page.goto(f"{base}/admin/domains")
        page.get_by_label("Domain").fill(f"fabrikam-{size}.com")
        page.get_by_role("button", name="Add domain").click()
        warning = page.get_by_role("alert").first.inner_text()
        assert f"fabrikam-{size}.com" in warning and "only your own domains" in warning
        _fits(page)
        screenshot(page, f"pages/admin-domain-warning-{size}")


def test_customers_see_no_times_while_the_admin_sees_why_and_manages_every_type(
    demo: Database, live_server: Any, open_page: Any, screenshot: Any
) -> None:
    base = live_server.url
    for size in SIZES:
        visitor = open_page(None, size)
        visitor.goto(f"{base}/book/contoso/intern-chat")
        main = visitor.inner_text("main")
        assert "No times are available right now." in main
        assert "licen" not in main.lower() and "Exchange" not in main
        _fits(visitor)
        screenshot(visitor, f"pages/booking-no-times-{size}")

        admin = open_page("admin@contoso.com", size)
        admin.goto(f"{base}/scheduling/admin")
        pradeep = admin.locator("tr[data-member='pradeep@contoso.com']").inner_text()
        assert "Unavailable" in pradeep and "Available" not in pradeep.replace("Unavailable", "")
        types = admin.locator("table.meeting-types").inner_text()
        assert "Team demo" in types and "Team: round-robin" in types and "Intern chat" in types
        for name in ("Edit Team demo", "Delete Team demo", "Edit Intern chat"):
            assert (
                admin.get_by_role("link", name=name)
                .or_(admin.get_by_role("button", name=name))
                .is_visible()
            )
        _fits(admin)
        screenshot(admin, f"pages/admin-scheduling-types-{size}")

    admin = open_page("admin@contoso.com", "desktop")
    admin.goto(f"{base}/scheduling/admin")
    admin.get_by_role("link", name="Edit Team demo").click()
    admin.get_by_label("Name", exact=True).fill("Team demo call")
    admin.get_by_role("button", name="Save").click()
    assert "Team demo call" in admin.locator("table.meeting-types").inner_text()
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name="Delete Team demo call").click()
    admin.wait_for_load_state()
    assert "Team demo call" not in admin.locator("main").inner_text()


def test_the_add_panel_guides_and_powershell_copies_with_one_click(
    demo: Database, live_server: Any, browser: Any, open_page: Any, screenshot: Any
) -> None:
    base = live_server.url
    for size in SIZES:
        page = open_page("admin@contoso.com", size)
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page.goto(f"{base}/admin/service-accounts?panel=office365")
        guide = page.locator("details.guide")
        assert guide.evaluate("d => d.open")
        text = guide.inner_text()
        assert "App registrations › New registration" in text
        assert "Email Sync: Mail.Read, Mail.ReadWrite" in text
        assert "Grant admin consent for your organization" in text
        assert "36 characters in five groups" in page.inner_text("#sa-client-id-help")
        screenshot(page, f"pages/admin-service-account-guide-{size}", full_page=False)

        page.goto(f"{base}/admin/service-accounts")
        page.get_by_role("link", name=re.compile("^Limit access")).first.click()
        page.get_by_label("Mail-enabled security group").fill("crm-sync@contoso.com")
        page.get_by_role("button", name="Show the commands").click()
        commands = page.locator("#rbac-commands").inner_text()
        copy = page.get_by_role("button", name="Copy the RBAC for Applications commands")
        copy.click()
        page.wait_for_function(
            "() => document.querySelector(\"button[data-copy='#rbac-commands']\")"
            ".textContent.startsWith('Copied')"
        )
        assert page.evaluate("navigator.clipboard.readText()") == commands
        _fits(page)
