"""Run Test for Exchange through the JSON API: an Exchange service account as entered, a
saved one, and a member's own Exchange connection."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from m365sim.server import SimServer
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.web.app import create_app
from support.ews_clients import SERVICE_ACCOUNT, SERVICE_PASSWORD, USER_PASSWORD, turn_on_exchange
from support.organizations import fresh

BASE = "/api/v1/organizations/contoso"


@pytest.fixture
def ews_url(sim: SimServer) -> Iterator[str]:
    yield turn_on_exchange(sim)
    close_exchange_connections()


@pytest.fixture
def api(settings, db, runtime):
    app = create_app(settings=settings, database=db, runtime=runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def headers(db, make_org) -> dict[str, str]:
    organization = make_org()
    with db.session() as session:
        org = fresh(session, organization)
        admin = orgs.add_member(session, org, "admin@contoso.com", role=Role.ADMIN)
        _, token = orgs.create_api_token(session, org, admin)
    return {"Authorization": f"Bearer {token}"}


async def test_run_test_then_save_then_retest_an_exchange_service_account(api, headers, ews_url):
    entered = {
        "server_url": ews_url,
        "username": SERVICE_ACCOUNT,
        "password": SERVICE_PASSWORD,
        "test_mailbox": "diego@contoso.com",
    }
    tested = await api.post(f"{BASE}/service-accounts/exchange/test", headers=headers, json=entered)
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] and "email" in tested.json()["enabled_features"]

    denied = await api.post(
        f"{BASE}/service-accounts/exchange/test",
        headers=headers,
        json={**entered, "username": "lee@contoso.com", "password": USER_PASSWORD},
    )
    failed = [c for c in denied.json()["checks"] if c["outcome"] == "failed"]
    assert [c["key"] for c in failed] == ["mailbox"]
    assert "ApplicationImpersonation" in failed[0]["fix"]

    missing = await api.post(
        f"{BASE}/service-accounts/exchange/test",
        headers=headers,
        json={**entered, "test_mailbox": ""},
    )
    assert missing.status_code == 422
    assert '"test_mailbox"' in missing.json()["error"]["fix"]

    refused = await api.post(
        f"{BASE}/service-accounts/exchange",
        headers=headers,
        json={**entered, "username": "lee@contoso.com", "password": USER_PASSWORD},
    )
    assert refused.status_code == 422  # saving runs the same test: nothing saved
    assert "ApplicationImpersonation" in refused.json()["error"]["fix"]
    assert (await api.get(f"{BASE}/service-accounts", headers=headers)).json() == []

    saved = await api.post(f"{BASE}/service-accounts/exchange", headers=headers, json=entered)
    assert saved.status_code == 201, saved.text
    account = saved.json()["service_account"]
    assert saved.json()["test"]["ok"] and account["status"] == "active"
    assert SERVICE_PASSWORD not in saved.text
    retested = await api.post(
        f"{BASE}/service-accounts/{account['id']}/test", headers=headers, json={}
    )
    assert retested.status_code == 200 and retested.json()["ok"], retested.text
    shown = await api.get(f"{BASE}/service-accounts/{account['id']}", headers=headers)
    assert shown.json()["status"] == "active"
    assert shown.json()["features"]["calendar"]["enabled"]


async def test_a_members_own_exchange_connection(api, headers, db, ews_url):
    with db.session() as session:
        org = orgs.get_organization(session, "contoso")
        diego = orgs.add_member(session, org, "diego@contoso.com")
        diego_id = diego.id
    wrong = await api.post(
        f"{BASE}/members/{diego_id}/connection/exchange/test",
        headers=headers,
        json={"server_url": ews_url, "password": "nope"},
    )
    assert wrong.status_code == 200
    assert not wrong.json()["ok"]
    assert [c["key"] for c in wrong.json()["checks"] if c["outcome"] == "failed"] == ["sign_in"]
    connected = await api.post(
        f"{BASE}/members/{diego_id}/connection/exchange",
        headers=headers,
        json={"server_url": ews_url, "password": USER_PASSWORD},
    )
    assert connected.status_code == 201, connected.text
    retested = await api.post(f"{BASE}/members/{diego_id}/connection/test", headers=headers)
    assert retested.status_code == 200 and retested.json()["ok"], retested.text
    assert "tasks" in retested.json()["enabled_features"]
