"""The directory's control API: what an admin does in the portal, done by tests."""

from __future__ import annotations

import httpx

from m365sim.server import SimServer
from support.demo import NO_CONSENT_APP_ID
from support.entra_client import CONTOSO, confidential_app, make_certificate
from support.sim_tokens import GRAPH_DEFAULT


def test_new_secret_is_shown_once_with_its_id_and_value(
    sim: SimServer, control: httpx.Client
) -> None:
    added = control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}/secrets", json={"displayName": "ci"}
    )
    assert added.status_code == 201
    secret = added.json()
    assert secret["keyId"] != secret["value"] and secret["value"] == secret["secretText"]
    assert secret["hint"] == secret["value"][:3]

    shown = control.get(f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}").json()["secrets"]
    assert secret["keyId"] in [s["keyId"] for s in shown]
    assert all("value" not in s for s in shown)

    app = confidential_app(sim, NO_CONSENT_APP_ID, secret["value"])
    assert "access_token" in app.acquire_token_for_client(GRAPH_DEFAULT)
    removed = control.delete(
        f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}/secrets/{secret['keyId']}"
    )
    assert removed.status_code == 204
    after = confidential_app(sim, NO_CONSENT_APP_ID, secret["value"]).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert after["error_codes"] == [7000215]


def test_new_app_with_permissions_and_certificate(sim: SimServer, control: httpx.Client) -> None:
    created = control.post(
        f"/_sim/tenants/{CONTOSO}/apps",
        json={
            "displayName": "CI app",
            "applicationPermissions": ["Mail.Read"],
            "secrets": [{"expires": "+30d"}],
        },
    ).json()
    assert created["servicePrincipal"]["grantedApplicationPermissions"] == []
    assert created["secrets"][0]["value"]
    certificate = make_certificate()
    uploaded = control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{created['appId']}/certificates",
        json={"pem": certificate.certificate_pem},
    ).json()
    assert uploaded["thumbprint"] == certificate.sha1_thumbprint
    assert (
        control.delete(
            f"/_sim/tenants/{CONTOSO}/apps/{created['appId']}/certificates/{uploaded['keyId']}"
        ).status_code
        == 204
    )
    bad = control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{created['appId']}/certificates", json={"pem": "nope"}
    )
    assert bad.status_code == 400 and "not a PEM certificate" in bad.json()["error"]["message"]


def test_user_flags_and_groups(sim: SimServer, control: httpx.Client) -> None:
    created = control.post(
        f"/_sim/tenants/{CONTOSO}/users",
        json={
            "userPrincipalName": "megan@contoso.com",
            "displayName": "Megan",
            "password": "P4ss!",
        },
    )
    assert created.status_code == 201
    patched = control.patch(
        f"/_sim/tenants/{CONTOSO}/users/megan@contoso.com",
        json={"licensed": False, "mailboxLocation": "onprem", "mailboxFull": True},
    ).json()
    assert (patched["licensed"], patched["mailboxLocation"], patched["mailboxFull"]) == (
        False,
        "onprem",
        True,
    )
    wrong = control.patch(
        f"/_sim/tenants/{CONTOSO}/users/megan@contoso.com", json={"licensed": "no"}
    )
    assert wrong.status_code == 400 and "licensed must be bool" in wrong.json()["error"]["message"]

    group = control.post(
        f"/_sim/tenants/{CONTOSO}/groups",
        json={
            "displayName": "Pilot",
            "mail": "pilot@contoso.com",
            "members": ["megan@contoso.com"],
        },
    ).json()
    control.post(
        f"/_sim/tenants/{CONTOSO}/groups/pilot@contoso.com/members",
        json={"user": "adele@contoso.com"},
    )
    tenant = sim.state.find_tenant(CONTOSO)
    assert tenant is not None and len(tenant.groups[group["id"]].member_ids) == 2


def test_unknown_objects_are_404_with_a_reason(control: httpx.Client) -> None:
    missing_tenant = control.get("/_sim/tenants/nowhere.example")
    assert (
        missing_tenant.status_code == 404
        and "nowhere.example" in missing_tenant.json()["error"]["message"]
    )
    missing_app = control.get(f"/_sim/tenants/{CONTOSO}/apps/00000000-0000-0000-0000-000000000000")
    assert missing_app.status_code == 404
