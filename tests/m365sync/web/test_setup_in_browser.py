"""Set up for me in a real browser (Debian's chromium through playwright): from an
organization with a domain to a saved, tested service account with Email and Calendar Sync
active, through the product's pages and m365sim's Microsoft sign-in and consent pages only;
and declining consent there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from m365sync.organizations.models import Role
from support.litware import (
    ADMIN,
    FOUR_PERMISSIONS,
    LITWARE_DOMAIN,
    PASSWORD,
    REP,
    SimControl,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def control(sim: Any, live_server: Any) -> Iterator[SimControl]:
    """Litware's tenant, whose user-connections app lists this server's Set up callback."""
    control = SimControl(sim)
    control.add_litware([f"{live_server.url}/admin/service-accounts/setup/callback"])
    yield control
    control.close()


@pytest.fixture
def admin_page(control: Any, live_server: Any, people: Any, new_page: Any, sign_in_as: Any) -> Any:
    """Litware's admin, signed in to m365sync, having added the domain to sync."""
    litware = people.organization("Litware", "litware")
    people.member(litware, ADMIN, Role.ADMIN, name="Lena Admin")
    people.member(litware, REP, Role.USER, name="Dana Rep")
    people.demo_crm(litware)
    page = new_page()
    sign_in_as(page, live_server.url, ADMIN)
    page.goto(f"{live_server.url}/admin/domains")
    page.get_by_label("Domain").fill(LITWARE_DOMAIN)
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("status").inner_text().startswith("Domain added.")
    return page


def start_set_up(page: Any, base_url: str, screenshot: Any = None) -> None:
    page.goto(f"{base_url}/admin/service-accounts")
    page.get_by_role("link", name="Add", exact=True).click()
    page.get_by_role("link", name="Set up for me").click()
    assert page.get_by_label("Email Sync").is_checked()
    assert page.get_by_label("Calendar Sync").is_checked()
    page.get_by_label("Test Account").fill(REP)
    if screenshot is not None:
        screenshot(page, "admin-set-up-for-me-panel", full_page=False)
    page.get_by_role("button", name="Sign in with Microsoft and set up").click()
    # m365sim's Microsoft sign-in page, the admin's address already filled in.
    assert page.get_by_label("Email or username").input_value() == ADMIN
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    consent = page.locator("ul.permissions").inner_text()
    assert "Application.ReadWrite.All" in consent
    assert "AppRoleAssignment.ReadWrite.All" in consent


def test_an_admin_sets_the_service_account_up_by_signing_in_with_microsoft(
    control: Any, live_server: Any, admin_page: Any, screenshot: Any
) -> None:
    page = admin_page
    start_set_up(page, live_server.url, screenshot)
    page.get_by_role("button", name="Accept").click()

    notice = page.get_by_role("status").inner_text()
    assert notice.startswith("Set up: m365sync registered its app in your Microsoft Entra ID")
    row = page.locator("table.service-accounts tbody tr").first
    assert "m365sync service account" in row.inner_text()
    assert "Email Sync" in row.inner_text() and "Calendar Sync" in row.inner_text()
    assert "Active" in row.inner_text()
    screenshot(page, "admin-set-up-for-me")

    # Email Sync and Calendar Sync run for Dana (the page follows along by itself).
    page.goto(f"{live_server.url}/admin/members")
    for feature in ("Email Sync", "Calendar Sync"):
        page.locator("table.mailboxes tr", has_text=feature).filter(
            has_text="Active"
        ).first.wait_for(timeout=60_000)

    # Entra ID holds exactly one app, one service principal, one certificate, four roles.
    (app,) = control.apps()
    assert app["signInAudience"] == "AzureADMyOrg" and app["secrets"] == []
    assert len(app["certificates"]) == 1
    assert app["servicePrincipal"] is not None
    assert set(app["servicePrincipal"]["grantedApplicationPermissions"]) == FOUR_PERMISSIONS


def test_declining_consent_at_microsoft_says_so_and_creates_nothing(
    control: Any, live_server: Any, admin_page: Any
) -> None:
    page = admin_page
    start_set_up(page, live_server.url)
    page.get_by_role("button", name="Cancel").click()

    alert = page.get_by_role("alert").inner_text()
    assert "declined on Microsoft's consent page" in alert
    assert "click Accept" in alert
    assert page.get_by_role("heading", name="Set up for me").is_visible()
    assert control.apps() == []
    assert page.locator("table.service-accounts").count() == 0
