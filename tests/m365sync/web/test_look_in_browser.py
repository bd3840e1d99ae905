"""Every page in a real browser (Debian's chromium), as an admin, a user and a visitor, at
desktop (1280 px) and phone (375 px) width: one stylesheet, nothing wider than the window,
the product's own pages for errors, times in the browser's time zone in one format, the API
documentation offline under the CSP, and Run Test's verdict with the failures first.

The walk writes a screenshot of each page at both widths (``docs/screenshots/pages/`` with
``M365SYNC_UPDATE_SCREENSHOTS=1``, see docs/web.md)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI

from m365sync.db import Database
from m365sync.demo import DEMO_SIGN_INS
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Role
from m365sync.scheduling.schemas import MeetingTypeInput
from m365sync.settings import Settings
from support.demo import DASHBOARD_PASSWORD as PASSWORD
from support.demo import SERVICE_SECRET_ID
from support.demo_org import seed_demo

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 740}}
PASSWORDS = {email: password for email, password, _ in DEMO_SIGN_INS}
DEMO_SERVICE_ACCOUNT = "11111111-2222-4333-8444-000000000001"
# The one format: "Wed 12 Mar 2025, 14:05 CET" (a meeting's: "..., 14:00-14:30 CET", en dash).
ONE_FORMAT = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4}, \d{2}:\d{2}(–\d{2}:\d{2})? (?P<zone>[A-Z]{2,5}|UTC[+-]\d{2}(:\d{2})?)$"
)


# --- the demo organization, synced ------------------------------------------------------------


@pytest.fixture
def demo_org(sim: Any, web_settings: Settings, database: Database, app: FastAPI) -> str:
    """The demo organization with a booking page of Adele's; seeded before the server starts,
    so its workers begin syncing at once. Returns the booking page's path."""
    seed_demo(web_settings, database)
    with database.session() as db:
        contoso = organizations.get_organization(db, "contoso")
        adele = organizations.get_member(db, contoso, "adele@contoso.com")
        app.state.scheduling.service(db).create_meeting_type(
            contoso.id,
            MeetingTypeInput.model_validate(
                {
                    "name": "Intro call",
                    "slug": "intro-call",
                    "host_member_ids": [adele.id],
                    "minimum_notice_minutes": 0,
                    "horizon_days": 60,
                }
            ),
            created_by=adele.id,
        )
    return "/book/contoso/intro-call"


@dataclass
class Walk:
    """One person's walk through the pages at one width, collecting what is wrong."""

    page: Any
    base: str
    size: str
    screenshot: Callable[..., None]
    zone_names: tuple[str, ...] = ()  # abbreviations the browser's zone may show
    problems: list[str] = field(default_factory=list)
    times_seen: int = 0
    console: list[str] = field(default_factory=list)

    def visit(self, path: str, name: str, *, status: int = 200) -> Any:
        answer = self.page.goto(self.base + path)
        return self.check(name, answer.status if answer else 0, status)

    def check(self, name: str, got: int = 200, status: int = 200) -> Any:
        page, where = self.page, f"{name} ({self.size})"
        if got != status:
            self.problems.append(f"{where}: status {got}, expected {status}")
        if "json" in (page.evaluate("document.contentType") or ""):
            self.problems.append(f"{where}: raw JSON")
        sheets = page.eval_on_selector_all(
            "link[rel=stylesheet]", "links => links.map(l => new URL(l.href).pathname)"
        )
        if sheets != ["/static/web/app.css"]:
            self.problems.append(f"{where}: stylesheets {sheets}")
        if page.locator("link[rel=icon][href$='favicon.svg']").count() != 1:
            self.problems.append(f"{where}: no favicon")
        wider = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        if wider > 0:
            self.problems.append(f"{where}: {wider}px wider than the window")
        for text in page.locator("main time").all_inner_texts():
            shown = text.replace("\u00a0", " ").strip()
            matched = ONE_FORMAT.match(shown)
            self.times_seen += 1
            if not matched:
                self.problems.append(f"{where}: time {shown!r} is not in the one format")
            elif self.zone_names and matched["zone"] not in self.zone_names:
                self.problems.append(f"{where}: time {shown!r} is not in the browser's zone")
        self.screenshot(page, f"pages/{name}-{self.size}")
        return page


def _open(browser: Any, size: str, zone: str, **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=SIZES[size], timezone_id=zone, **options)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    return context, page, console


def _sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r".*/(admin|me)/.*"))


def _reload_until(page: Any, selector: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} did not appear on {page.url}"
        page.wait_for_timeout(1000)
        page.reload()


def _phone_navigation_folds(walk: Walk) -> None:
    """At phone width the side navigation is a closed "Menu" that opens, and Sign out is on
    screen."""
    page = walk.page
    drawer = page.locator("details[data-nav-drawer]")
    if drawer.evaluate("d => d.open"):
        walk.problems.append("phone: the navigation is not folded")
    sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    if not sign_out or sign_out["x"] < 0 or sign_out["x"] + sign_out["width"] > 375:
        walk.problems.append(f"phone: Sign out is off screen ({sign_out})")
    page.locator("details[data-nav-drawer] > summary").click()
    if not page.locator(".sidenav a").first.is_visible():
        walk.problems.append("phone: the Menu does not open")


def test_every_page_has_the_one_look_at_desktop_and_phone_width(
    demo_org: str, live_server: Any, browser: Any, screenshot: Any
) -> None:
    base = live_server.url
    problems: list[str] = []
    for size in SIZES:
        # An admin in Berlin.
        context, page, console = _open(browser, size, "Europe/Berlin")
        walk = Walk(page, base, size, screenshot, ("CET", "CEST"), console=console)
        walk.visit("/sign-in", "sign-in")
        _sign_in(page, base, "admin@contoso.com", PASSWORDS["admin@contoso.com"])
        if size == "phone":
            _phone_navigation_folds(walk)
        walk.visit("/admin/domains", "admin-domains")
        walk.visit("/admin/service-accounts", "admin-service-accounts")
        limit_access = page.get_by_role("link", name=re.compile("^Limit access")).first
        limit_access_path = limit_access.get_attribute("href")
        walk.visit("/admin/service-accounts?panel=add", "admin-service-account-add")
        walk.visit("/admin/service-accounts?panel=office365", "admin-service-account-office365")
        walk.visit("/admin/service-accounts?panel=exchange", "admin-service-account-exchange")
        walk.visit(limit_access_path, "admin-limit-access")
        walk.visit("/admin/api-tokens", "admin-api-tokens")
        walk.visit("/admin/salesforce", "admin-salesforce")
        page.goto(f"{base}/admin/members")
        page.wait_for_function(
            "() => /[1-9]\\d* emails?/.test(document.querySelector('table.mailboxes').innerText)",
            timeout=90_000,
        )
        walk.check("admin-members")
        walk.visit("/admin/sync-settings", "admin-sync-settings")
        walk.visit("/admin/audit-log", "admin-audit-log")
        page.goto(f"{base}/activities")
        _reload_until(page, "table.activities tbody tr a")
        walk.check("admin-activities")
        page.locator("table.activities tbody tr a").first.click()
        walk.check("admin-activity")
        walk.visit("/scheduling/admin", "admin-scheduling")
        switch_off = page.get_by_role("button", name=re.compile("^Switch off")).first
        ink, paper = switch_off.evaluate(
            "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
        )
        if ink == paper or ink == "rgb(255, 255, 255)":
            problems.append(f"Switch off is {ink} on {paper}")
        walk.visit("/admin/no-such-page", "not-found-admin", status=404)
        if "Go to your start page" not in page.inner_text("main"):
            problems.append("the 404 page has no way back")
        problems += walk.problems
        problems += [f"admin ({size}): {e}" for e in console if "Failed to load" not in e]
        assert walk.times_seen > 0
        assert "Europe/Berlin" in page.inner_text(".page-footer")
        context.close()

        # A sales rep in New York.
        context, page, console = _open(browser, size, "America/New_York")
        walk = Walk(page, base, size, screenshot, ("EST", "EDT"), console=console)
        _sign_in(page, base, "adele@contoso.com", PASSWORDS["adele@contoso.com"])
        walk.visit("/me/connections", "user-connections")
        walk.visit("/me/profile", "user-profile")
        walk.visit("/activities", "user-activities")
        walk.visit("/me/unresolved", "user-unresolved")
        walk.visit("/scheduling", "user-scheduling")
        walk.visit("/scheduling/meeting-types/new", "user-meeting-type-new")
        link_name = page.get_by_label("Link name")
        link_name.fill("Intro Call")
        if not link_name.evaluate("e => e.validity.patternMismatch"):
            problems.append("the link name's pattern lets 'Intro Call' through")
        link_name.fill("intro-call")
        if link_name.evaluate("e => !e.validity.valid"):
            problems.append("the link name's pattern refuses 'intro-call'")
        walk.visit("/admin/members", "forbidden-user", status=403)
        if page.locator("nav a[href^='/admin/']").count() or "Admin" in page.inner_text("header"):
            problems.append("a refused user sees the admin menu")
        walk.visit("/no-such-page", "not-found-user", status=404)
        problems += walk.problems
        problems += [f"user ({size}): {e}" for e in console if "Failed to load" not in e]
        context.close()

        # A visitor books, reschedules and cancels a meeting.
        context, page, console = _open(browser, size, "America/New_York", locale="en-US")
        walk = Walk(page, base, size, screenshot, ("EST", "EDT"), console=console)
        walk.visit("/no-such-page", "not-found", status=404)
        page.goto(base + demo_org)
        page.wait_for_url("**tz=America%2FNew_York**")
        walk.check("booking-page")
        slot = page.locator("a.slot").first
        if slot.count() == 0:
            page.locator("[data-next-week]").click()
            slot = page.locator("a.slot").first
        slot.click()
        walk.check("booking-form")
        page.get_by_label("Your name").fill("Pat Buyer")
        page.get_by_label("Email").fill(f"pat-{size}@fabrikam.example")
        page.get_by_role("button", name="Book meeting").click()
        page.get_by_role("heading", name="You're booked").wait_for()
        walk.check("booking-confirmed")
        page.get_by_role("link", name="Reschedule").click()
        walk.check("booking-reschedule")
        page.go_back()
        page.get_by_role("link", name="Cancel").click()
        walk.check("booking-cancel")
        problems += walk.problems
        problems += [f"visitor ({size}): {e}" for e in console if "Failed to load" not in e]
        context.close()
    assert not problems, "\n".join(problems)


# --- errors, favicon, API docs, times, Run Test (no sync needed) ------------------------------


@pytest.fixture
def contoso(people: Any) -> Any:
    org = people.organization("Contoso", "contoso")
    people.member(org, "admin@contoso.com", Role.ADMIN, name="Megan Bowen")
    people.member(org, "adele@contoso.com", Role.USER, name="Adele Vance")
    return org


@pytest.fixture
def pages_of(browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """``pages_of(email, size="desktop", zone="Europe/Berlin", javascript=True)``: a signed-in
    page of its own browser context (email None: a visitor)."""
    contexts: list[Any] = []

    def open_page(
        email: str | None,
        size: str = "desktop",
        zone: str = "Europe/Berlin",
        javascript: bool = True,
    ) -> Any:
        context = browser.new_context(
            viewport=SIZES[size],
            timezone_id=zone,
            java_script_enabled=javascript,
            ignore_https_errors=True,
        )
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.console_errors = errors
        if email:
            _sign_in(page, live_server.url, email, PASSWORD)
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_errors_are_product_pages_and_the_api_keeps_its_json(
    contoso: Any, app: FastAPI, live_server: Any, pages_of: Any
) -> None:
    @app.get("/admin/broken-for-the-test", include_in_schema=False)
    def broken() -> None:
        raise RuntimeError("a bug")

    base = live_server.url
    for size in SIZES:
        page = pages_of("adele@contoso.com", size)
        answer = page.goto(f"{base}/admin/domains")
        assert answer.status == 403
        assert page.get_by_role("heading", name="Not allowed").is_visible()
        assert "This page is for admins of your organization." in page.inner_text("main")
        assert page.locator("a[href='/admin/domains'], a[href='/admin/members']").count() == 0
        assert page.get_by_role("button", name="Sign out").is_visible()

        answer = page.goto(f"{base}/nothing/here")
        assert answer.status == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert page.get_by_role("heading", name="Page not found").is_visible()
        assert page.get_by_role("link", name="Go to your start page").is_visible()

        admin = pages_of("admin@contoso.com", size)
        answer = admin.goto(f"{base}/admin/broken-for-the-test")
        assert answer.status == 500
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
        assert admin.get_by_role("heading", name="Something went wrong").is_visible()
        assert "quote reference" in admin.inner_text("main")
        assert "RuntimeError" not in admin.content()
        wider = admin.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert wider <= 0

    visitor = pages_of(None)
    answer = visitor.goto(f"{base}/api/v1/nothing")
    assert answer.status == 404
    assert answer.json() == {
        "error": {
            "message": "There is nothing at /api/v1/nothing.",
            "fix": "Check the address: the API's routes are listed at /api/docs.",
        }
    }
    icon = visitor.goto(f"{base}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"


def test_api_docs_render_offline_under_the_csp(
    contoso: Any, live_server: Any, pages_of: Any, screenshot: Any
) -> None:
    base = live_server.url
    for size in SIZES:
        page = pages_of(None, size)
        elsewhere: list[str] = []
        page.context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(base)
                else (elsewhere.append(route.request.url), route.abort())
            ),
        )
        page.add_init_script(
            "window.cspViolations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        page.goto(f"{base}/api/docs")
        page.locator(".swagger-ui .opblock").first.wait_for(timeout=30_000)
        assert page.locator(".swagger-ui .title", has_text="m365sync").is_visible()
        assert page.evaluate("window.cspViolations") == []
        assert page.console_errors == []
        assert elsewhere == []
        screenshot(page, f"pages/api-docs-{size}", full_page=False)


def test_times_follow_the_browser_and_the_profile_in_one_format(
    contoso: Any, live_server: Any, pages_of: Any
) -> None:
    base = live_server.url
    admin = pages_of("admin@contoso.com", zone="Asia/Kolkata")
    admin.goto(f"{base}/admin/domains")
    admin.get_by_label("Domain").fill("contoso.com")
    admin.get_by_role("button", name="Add domain").click()
    admin.goto(f"{base}/admin/audit-log")
    shown = admin.locator("main time").first.inner_text().replace("\u00a0", " ")
    assert ONE_FORMAT.match(shown) and shown.endswith(" IST"), shown
    # (Chromium still names Kolkata by its old name.)
    footer = admin.inner_text(".page-footer")
    assert re.search(r"Asia/(Kolkata|Calcutta) \(your browser's time zone\)", footer), footer

    # Chosen in the profile, a zone wins over the browser's.
    admin.goto(f"{base}/me/profile")
    tokyo = admin.locator("#time-zone option[value='Asia/Tokyo']").first
    assert tokyo.inner_text() == "(UTC+09:00) Tokyo"
    common = admin.locator("#time-zone optgroup").first
    assert common.get_attribute("label") == "Common"
    admin.get_by_label("Show times in").select_option("Asia/Tokyo")
    admin.get_by_role("button", name="Save time zone").click()
    assert admin.get_by_role("status").inner_text() == "Time zone saved."
    admin.goto(f"{base}/admin/audit-log")
    shown = admin.locator("main time").first.inner_text().replace("\u00a0", " ")
    assert shown.endswith(" JST"), shown

    # Without JavaScript the browser's zone is unknown: UTC, named.
    plain = pages_of("adele@contoso.com", zone="America/New_York", javascript=False)
    plain.goto(f"{base}/me/profile")
    shown = plain.locator("main time").first.inner_text().replace("\u00a0", " ")
    assert ONE_FORMAT.match(shown) and shown.endswith(" UTC"), shown
    assert "Times are shown in UTC" in plain.inner_text(".page-footer")


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_run_test_puts_its_verdict_first_and_the_failure_before_the_passes(
    javascript: bool,
    sim: Any,
    people: Any,
    contoso: Any,
    live_server: Any,
    pages_of: Any,
    screenshot: Any,
) -> None:
    people.domain(contoso, "contoso.com")
    page = pages_of("admin@contoso.com", javascript=javascript)
    page.goto(f"{live_server.url}/admin/service-accounts?panel=office365")
    page.get_by_label("Client ID").fill(DEMO_SERVICE_ACCOUNT)
    page.get_by_label("Client Secret Value").fill(SERVICE_SECRET_ID)
    page.get_by_label("Test Account").fill("adele@contoso.com")
    page.get_by_role("button", name="Run Test").click()
    results = page.locator("#test-results")
    results.locator(".verdict").wait_for()
    verdict = results.locator(".verdict").inner_text()
    assert verdict.startswith("Test failed: "), verdict
    assert "checks failed" in verdict
    # The verdict comes straight after the heading, the failure first of the checks.
    order = results.evaluate("r => [...r.children].map(c => c.tagName + '.' + c.className)")
    assert order == ["H3.", "P.verdict verdict-failed", "OL.checks"]
    first = results.locator(".check").first
    assert "check-failed" in first.get_attribute("class")
    assert "This is the secret's ID, not its value" in first.inner_text()
    assert results.locator(".check-passed").count() > 0
    if javascript:
        focused = page.evaluate("document.activeElement.className")
        assert focused == "check check-failed"
        screenshot(page, "pages/admin-run-test-verdict-desktop", full_page=False)
