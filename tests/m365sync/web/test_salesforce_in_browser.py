"""Salesforce in a real browser (Debian's chromium through playwright): an admin connects
Salesforce with "Connect Salesforce" (sfsim's sign-in page, PKCE), runs its test, and
finds a synced email in Activities linked to its record in Salesforce, which opens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI

from m365sync.web.app import create_app
from support.salesforce_target_world import SalesforceTarget, salesforce_target

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db", ["sqlite"], indirect=True)]

target = salesforce_target
ADMIN = "megan@contoso.com"
CONSUMER_KEY = "3MVG9sfsim.browser.test.consumer.key.0002"
CONSUMER_SECRET = "sfsim-browser-consumer-secret-0002"


@pytest.fixture
def app(target: SalesforceTarget) -> FastAPI:
    """The product's app on Contoso's database, Salesforce at sfsim."""
    target.add_admin(ADMIN)
    return create_app(settings=target.settings, database=target.database)


@pytest.fixture
def connected_app_for(target: SalesforceTarget, app: FastAPI, live_server: Any) -> str:
    """A connected app in the org whose callback is this server's, and the server's public
    address set to where it listens; returns the address."""
    runtime = app.state.runtime
    runtime.settings = runtime.settings.model_copy(update={"public_url": live_server.url})
    target.control(
        "POST",
        "seed",
        json={
            "connectedApps": [
                {
                    "name": "m365sync (browser test)",
                    "consumerKey": CONSUMER_KEY,
                    "consumerSecret": CONSUMER_SECRET,
                    "callbackUrls": [f"{live_server.url}/salesforce/callback"],
                    "preAuthorized": ["integration@acme.example"],
                }
            ]
        },
    )
    return str(live_server.url)


def test_connect_salesforce_run_test_and_open_a_synced_email_in_salesforce(
    target: SalesforceTarget,
    connected_app_for: str,
    new_page: Any,
    sign_in_as: Any,
    screenshot: Any,
) -> None:
    base = connected_app_for
    page = new_page()
    sign_in_as(page, base, ADMIN)
    page.goto(f"{base}/admin/salesforce")
    assert page.get_by_text("Salesforce is not connected.").is_visible()

    page.locator("#web-consumer-key").fill(CONSUMER_KEY)
    page.locator("#web-consumer-secret").fill(CONSUMER_SECRET)
    page.get_by_role("button", name="Connect Salesforce").click()
    # Salesforce's sign-in page (sfsim's), as the integration user.
    page.get_by_label("Username").fill("integration@acme.example")
    page.get_by_label("Password").fill("Demo-Integration-1!")
    page.get_by_role("button", name="Log In and Allow").click()

    page.wait_for_url(f"{base}/admin/salesforce?notice=connected")
    assert page.get_by_role("status").inner_text().startswith("Salesforce is connected")
    assert "Connected and working" in page.locator("[data-verdict]").inner_text()
    assert page.locator("[data-integration-user]").inner_text() == "integration@acme.example"

    page.get_by_role("button", name="Run Test").click()
    page.wait_for_url(f"{base}/admin/salesforce?notice=tested")
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "passed"
    screenshot(page, "admin-salesforce")

    # Mail arrives, the mirror knows Pat, the sync logs it, the writer puts it in Salesforce.
    target.mirror()
    message_id = target.mail("Order of 500 units")
    with ThreadPoolExecutor(1) as thread:  # off playwright's event loop
        assert thread.submit(target.sync.sync, "adele@contoso.com").result().outcome == "ok"
    assert target.drain().synced == 1
    (email,) = target.email_messages(message_id)

    page.goto(f"{base}/activities")
    page.get_by_role("link", name="Order of 500 units", exact=True).click()
    link = page.get_by_role("link", name="Open the Salesforce record")
    assert link.get_attribute("href") == (
        f"{target.sf.url}/lightning/r/EmailMessage/{email['Id']}/view"
    )
    link.click()
    page.wait_for_url(f"{target.sf.url}/lightning/r/EmailMessage/**")
    assert page.get_by_role("heading", level=1).inner_text() == "Order of 500 units"
    assert page.get_by_text("EmailMessageRelation").first.is_visible()
