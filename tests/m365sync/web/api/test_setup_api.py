"""Set up for me through the JSON API: begin (the Microsoft sign-in URL), the administrator
signs in at m365sim, complete (Microsoft's redirect parameters); and a refusal, whose audit
trail stays."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from tests.m365sync.conftest import fresh
from tests.m365sync.connections.signin import sign_in

from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.web.app import create_app
from support.litware import (
    ADMIN,
    APP_ADMIN,
    FOUR_PERMISSIONS,
    LITWARE_DOMAIN,
    PASSWORD,
    REP,
    SimControl,
)

REDIRECT = "http://localhost:8365/admin/service-accounts/setup/callback"


@pytest.fixture
def api(settings: Any, db: Any, runtime: Any) -> httpx.AsyncClient:
    app = create_app(settings=settings, database=db, runtime=runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def control(sim: Any) -> Any:
    control = SimControl(sim)
    control.add_litware()
    yield control
    control.close()


@pytest.fixture
def token(db: Any, make_org: Any, control: Any) -> str:
    org = make_org("Litware", (LITWARE_DOMAIN,), "litware", verified=False)
    with db.session() as session:
        organization = fresh(session, org)
        admin = orgs.add_member(session, organization, ADMIN, role=Role.ADMIN)
        _, secret = orgs.create_api_token(session, organization, admin)
    return secret


async def sign_in_at_microsoft(sim: Any, url: str, username: str) -> dict[str, str]:
    return await asyncio.to_thread(
        sign_in,
        url,
        username=username,
        password=PASSWORD,
        ca_bundle=str(sim.tls.ca_bundle),
        redirect_prefix=REDIRECT,
    )


async def test_set_up_for_me_through_the_api(api, sim, control, token):
    headers = {"Authorization": f"Bearer {token}"}
    base = "/api/v1/organizations/litware/service-accounts"
    started = await api.post(
        f"{base}/setup",
        headers=headers,
        json={"features": ["email", "calendar"], "test_mailbox": REP},
    )
    assert started.status_code == 200, started.text
    params = await sign_in_at_microsoft(sim, started.json()["authorization_url"], ADMIN)

    done = await api.post(f"{base}/setup/complete", headers=headers, json={"params": params})

    assert done.status_code == 201, done.text
    body = done.json()
    assert body["test"]["ok"] is True
    account = body["service_account"]
    assert account["set_up_by_m365sync"] is True
    assert account["credential_type"] == "certificate"
    assert account["certificate_expires_at"]
    assert account["features"]["email"]["enabled"] and account["features"]["calendar"]["enabled"]
    (app,) = control.apps()
    assert app["appId"] == account["client_id"]
    assert set(app["servicePrincipal"]["grantedApplicationPermissions"]) == FOUR_PERMISSIONS
    assert "private_key" not in done.text and "BEGIN PRIVATE" not in done.text


async def test_a_refused_setup_answers_with_cause_and_fix_and_keeps_its_audit_trail(
    api, sim, control, token
):
    control.consent_for_everyone(["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"])
    headers = {"Authorization": f"Bearer {token}"}
    base = "/api/v1/organizations/litware"
    started = await api.post(
        f"{base}/service-accounts/setup", headers=headers, json={"test_mailbox": REP}
    )
    params = await sign_in_at_microsoft(sim, started.json()["authorization_url"], APP_ADMIN)

    refused = await api.post(
        f"{base}/service-accounts/setup/complete", headers=headers, json={"params": params}
    )

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert "deleted again" in error["message"]
    assert "Global Administrator or Privileged Role Administrator" in error["fix"]
    assert control.apps() == []
    trail = (await api.get(f"{base}/audit", headers=headers)).json()
    seen = [e["action"] for e in trail if e["action"].startswith("entra.")]
    assert seen == [  # newest first: everything made before the refusal, then undone
        "entra.application.delete",
        "entra.service_principal.create",
        "entra.certificate.add",
        "entra.application.create",
    ]

    # Features a service account can't serve are refused before Microsoft is asked.
    tasks = await api.post(
        f"{base}/service-accounts/setup",
        headers=headers,
        json={"features": ["tasks"], "test_mailbox": REP},
    )
    assert tasks.status_code == 422
    assert "Task Sync" in tasks.json()["error"]["message"]
