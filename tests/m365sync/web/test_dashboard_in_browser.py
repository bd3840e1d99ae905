"""The dashboard in a real browser (Debian's chromium through playwright)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from m365sync.organizations.models import Role
from support.demo import SERVICE_APP_ID, SERVICE_SECRET, SERVICE_SECRET_ID, USER_APP_ID

pytestmark = pytest.mark.browser


def reload_until(page: Any, selector: str, seconds: float = 60) -> None:
    """Reload a page that doesn't refresh itself until ``selector`` shows (sync runs in the
    background)."""
    deadline = time.monotonic() + seconds
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} did not appear on {page.url}"
        page.wait_for_timeout(1000)
        page.reload()


def test_an_admin_of_one_org_cannot_reach_another_orgs_pages(
    live_server: Any, people: Any, new_page: Any, sign_in_as: Any, screenshot: Any
) -> None:
    contoso = people.organization("Contoso", "contoso")
    fabrikam = people.organization("Fabrikam", "fabrikam")
    people.member(contoso, "adele@contoso.com", Role.USER)
    people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    page = new_page()
    page.goto(f"{live_server.url}/sign-in")
    screenshot(page, "sign-in")

    sign_in_as(page, live_server.url, "admin@fabrikam.com")
    page.goto(f"{live_server.url}/admin/domains")
    page.get_by_label("Domain").fill("not a domain")
    page.get_by_role("button", name="Add domain").click()
    alert = page.get_by_role("alert").inner_text()
    assert alert.startswith("'not a domain' is not a domain name.")
    assert "Enter a domain such as contoso.com." in alert
    page.get_by_label("Domain").fill("fabrikam.com")
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("status").inner_text().startswith("Domain added. Verify it")
    screenshot(page, "admin-domains")

    page.goto(f"{live_server.url}/admin/members")
    assert "adele@contoso.com" not in page.content()
    screenshot(page, "admin-members")

    user_page = new_page()
    sign_in_as(user_page, live_server.url, "adele@contoso.com")
    answer = user_page.goto(f"{live_server.url}/admin/domains")
    assert answer.status == 403
    assert "This page is for admins of your organization." in user_page.inner_text("main")
    assert "fabrikam.com" not in user_page.content()
    user_page.goto(f"{live_server.url}/me/connections")
    screenshot(user_page, "user-connections")


def test_an_admin_adds_domains_and_a_service_account_fixing_a_secret_id(
    sim: Any, live_server: Any, people: Any, new_page: Any, sign_in_as: Any, screenshot: Any
) -> None:
    contoso = people.organization("Contoso", "contoso")
    people.member(contoso, "admin@contoso.com", Role.ADMIN, name="Megan Bowen")
    people.member(contoso, "adele@contoso.com", Role.USER, name="Adele Vance")
    people.member(contoso, "diego@contoso.com", Role.USER, name="Diego Siciliani")
    people.demo_crm(contoso)
    page = new_page()
    sign_in_as(page, live_server.url, "admin@contoso.com")
    page.goto(f"{live_server.url}/admin/domains")
    page.get_by_label("Domain").fill("contoso.com")
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("status").inner_text().startswith("Domain added. Verify it")

    page.goto(f"{live_server.url}/admin/service-accounts")
    page.get_by_role("link", name="Add", exact=True).click()
    page.get_by_role("link", name="Connect using Office 365").click()
    page.get_by_label("Client ID").fill(SERVICE_APP_ID)
    page.get_by_label("Client Secret Value").fill(SERVICE_SECRET_ID)
    page.get_by_label("Test Account").fill("adele@contoso.com")
    page.get_by_role("button", name="Run Test").click()
    page.wait_for_selector("#test-results .checks, #test-results .error-box")
    results = page.inner_text("#test-results")
    assert "This is the secret's ID, not its value" in results
    assert "Value" in results  # the fix: copy the Value column
    failed = page.locator("#test-results .check-failed").first
    assert "This is the secret's ID, not its value" in failed.inner_text()
    failed.scroll_into_view_if_needed()
    screenshot(page, "admin-service-account-run-test", full_page=False)

    page.get_by_label("Client Secret Value").fill(SERVICE_SECRET)
    page.get_by_role("button", name="Run Test").click()
    page.wait_for_selector("#test-results .checks")
    results = page.inner_text("#test-results")
    assert "Failed" not in results and "Passed" in results
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text().startswith("Service account saved.")
    row = page.locator("table.service-accounts tbody tr").first
    assert "Email Sync" in row.inner_text() and "Calendar Sync" in row.inner_text()
    screenshot(page, "admin-service-accounts")

    # The in-process workers sync the mailboxes: the page follows along by itself.
    page.goto(f"{live_server.url}/admin/members")
    adele_email = page.locator("tr", has_text="Email Sync").filter(has_text="Active")
    adele_email.first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => /[1-9]\\d* (emails?|meetings?)/"
        ".test(document.querySelector('table.mailboxes').innerText)",
        timeout=60_000,
    )
    screenshot(page, "admin-members-syncing")

    # Diego's mail with Fabrikam and Adele's meetings, logged into the CRM.
    page.goto(f"{live_server.url}/activities")
    reload_until(page, "table.activities tbody tr:has-text('Fabrikam renewal - next steps')")
    assert page.locator("table.activities tbody tr", has_text="Meeting").count() > 0
    screenshot(page, "activities")
    page.get_by_role("link", name="Fabrikam renewal - next steps").first.click()
    assert page.locator("main h1").inner_text() == "Fabrikam renewal - next steps"
    assert "Can we get the renewal quote by Friday?" in page.inner_text("main")
    screenshot(page, "activity-detail")


def test_an_admin_limits_the_service_account_to_a_group(
    sim: Any,
    sim_control: Any,
    live_server: Any,
    people: Any,
    new_page: Any,
    sign_in_as: Any,
    screenshot: Any,
) -> None:
    contoso = people.organization("Contoso", "contoso")
    people.member(contoso, "admin@contoso.com", Role.ADMIN, name="Megan Bowen")
    people.member(contoso, "adele@contoso.com", Role.USER, name="Adele Vance")
    people.member(contoso, "johanna@contoso.com", Role.USER, name="Johanna Lorenz")
    people.member(contoso, "pradeep@contoso.com", Role.USER, name="Pradeep Gupta")
    page = new_page()
    sign_in_as(page, live_server.url, "admin@contoso.com")
    page.goto(f"{live_server.url}/admin/domains")
    page.get_by_label("Domain").fill("contoso.com")
    page.get_by_role("button", name="Add domain").click()
    page.goto(f"{live_server.url}/admin/service-accounts?panel=office365")
    page.get_by_label("Client ID").fill(SERVICE_APP_ID)
    page.get_by_label("Client Secret Value").fill(SERVICE_SECRET)
    page.get_by_label("Test Account").fill("adele@contoso.com")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text().startswith("Service account saved.")

    page.get_by_role("link", name="Limit access").first.click()
    page.get_by_label("Mail-enabled security group").fill("not a group")
    page.get_by_role("button", name="Show the commands").click()
    assert "is not the email address of a mail-enabled security group" in page.inner_text("main")
    page.get_by_label("Mail-enabled security group").fill("crm-sync@contoso.com")
    page.get_by_role("button", name="Show the commands").click()
    commands = page.inner_text("main")
    assert f"New-ApplicationAccessPolicy -AppId '{SERVICE_APP_ID}'" in commands
    assert "-PolicyScopeGroupId 'crm-sync@contoso.com'" in commands
    assert "New-ManagementRoleAssignment" in commands
    # The tenant's admin runs the Application Access Policy command (crm-sync@contoso.com
    # holds Adele, not Johanna); Pradeep has no Exchange Online licence.
    tenant_id = sim.state.find_tenant("contoso.com").id
    # The check below is about what the product shows for each outcome, not about Exchange's
    # propagation delay (an hour by default in m365sim): the change reaches Graph at once.
    sim.state.config.policy_propagation_seconds = 0
    sim_control(
        "POST",
        f"/_sim/tenants/{tenant_id}/accessPolicies",
        json={
            "AppId": SERVICE_APP_ID,
            "PolicyScopeGroupId": "crm-sync@contoso.com",
            "AccessRight": "RestrictAccess",
        },
    )
    page.get_by_role("button", name="Check mailboxes").click()
    page.wait_for_selector("table.mailbox-reach")
    reach = page.locator("table.mailbox-reach tbody")

    def result_of(email: str) -> str:
        return str(reach.locator("tr", has_text=email).inner_text())

    assert "Reachable" in result_of("adele@contoso.com")
    assert "Blocked by policy" in result_of("johanna@contoso.com")
    assert "Unlicensed or on-premises" in result_of("pradeep@contoso.com")
    screenshot(page, "admin-limit-access")


def test_a_user_connects_their_office_365_sees_task_sync_and_disconnects(
    sim: Any, live_server: Any, people: Any, new_page: Any, sign_in_as: Any, screenshot: Any
) -> None:
    contoso = people.organization("Contoso", "contoso")
    people.domain(contoso, "contoso.com")
    people.member(contoso, "adele@contoso.com", Role.USER)
    app = sim.state.find_tenant("contoso.com").apps[USER_APP_ID]
    app.redirect_uris.append(f"{live_server.url}/connections/office365/callback")
    page = new_page()
    sign_in_as(page, live_server.url, "adele@contoso.com")
    page.goto(f"{live_server.url}/me/connections")
    assert "Off" in page.locator("[data-feature=tasks]").inner_text()

    page.get_by_role("button", name="Connect your Office 365").click()
    page.get_by_label("Password").fill("Demo-User-1!")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Accept").click()

    assert page.get_by_role("status").inner_text() == "Your Office 365 mailbox is connected."
    assert "Enabled" in page.locator("[data-feature=tasks]").inner_text()
    # The workers start her Task Sync; the status section follows along by itself.
    status = page.locator("[data-poll-url='/me/connections/status']")
    status.locator("tr", has_text="Task Sync").filter(has_text="Active").wait_for(timeout=30_000)
    screenshot(page, "user-connections-connected")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect").click()
    assert page.get_by_role("status").inner_text() == "Disconnected. Your tokens were deleted."
    assert "Off" in page.locator("[data-feature=tasks]").inner_text()
    # The sync status agrees at once, and stays so: a choice, not a fault.
    task_sync = page.locator("[data-poll-url='/me/connections/status'] tr", has_text="Task Sync")
    assert "Disconnected by the user" in task_sync.inner_text()
    page.wait_for_timeout(6_000)  # a poll later
    assert "Disconnected by the user" in task_sync.inner_text()
    assert "Active" not in task_sync.inner_text()


def test_long_unbroken_names_wrap_instead_of_widening_the_pages(
    live_server: Any, people: Any, new_page: Any, sign_in_as: Any, database: Any
) -> None:
    """A name of 200 characters without a space (the most a name may have), or one of
    10,000 stored before names had a limit, never pushes a page wider than the window."""
    from m365sync.organizations import service as organizations

    org = people.organization("Contoso" + "o" * 193, "contoso")
    admin = people.member(org, "admin@contoso.com", Role.ADMIN, name="M" * 200)
    people.member(org, "adele@contoso.com", Role.USER, name="A" * 10_000)
    with database.session() as db:
        organizations.create_api_token(db, org, admin, name="T" * 200)
    page = new_page()
    sign_in_as(page, live_server.url, "admin@contoso.com")
    for path in ("/admin/members", "/admin/api-tokens", "/me/connections"):
        page.goto(f"{live_server.url}{path}")
        assert page.get_by_role("heading", level=1).is_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than the window"
