"""App-only tokens (client credentials) for service accounts: secret, certificate, and the
mistakes admins make, each answered with Microsoft's AADSTS code."""

from __future__ import annotations

import httpx
import jwt
import pytest
from azure.identity import ClientSecretCredential

from m365sim.graph.auth import decode_access_token
from m365sim.server import SimServer
from support.demo import (
    DEMO_TENANT_ID,
    NO_CONSENT_APP_ID,
    NO_CONSENT_SECRET,
    SERVICE_APP_ID,
    SERVICE_SECRET,
    SERVICE_SECRET_ID,
)
from support.entra_client import CONTOSO, confidential_app, make_certificate
from support.sim_tokens import GRAPH_DEFAULT


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_secret_gets_an_app_token_with_the_granted_roles(sim: SimServer) -> None:
    result = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000
    claims = decode_access_token(sim.state, result["access_token"])  # what Graph accepts
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["iss"] == f"https://sts.windows.net/{DEMO_TENANT_ID}/"
    assert claims["tid"] == DEMO_TENANT_ID
    assert claims["appid"] == SERVICE_APP_ID
    assert claims["idtyp"] == "app"
    tenant = sim.state.find_tenant(CONTOSO)
    assert tenant is not None
    assert claims["oid"] == tenant.service_principals[SERVICE_APP_ID].id
    assert claims["roles"] == [
        "Calendars.Read",
        "Calendars.ReadWrite",
        "Mail.Read",
        "Mail.ReadWrite",
        "User.Read.All",
    ]
    assert "scp" not in claims


def test_without_admin_consent_the_token_has_no_roles_claim(sim: SimServer) -> None:
    result = confidential_app(sim, NO_CONSENT_APP_ID, NO_CONSENT_SECRET).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert "roles" not in claims_of(result["access_token"])


def test_consent_granted_later_appears_in_the_next_token(
    sim: SimServer, control: httpx.Client
) -> None:
    granted = control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}/consent",
        json={"permissions": ["Mail.Read"]},
    )
    assert granted.json()["grantedApplicationPermissions"] == ["Mail.Read"]
    result = confidential_app(sim, NO_CONSENT_APP_ID, NO_CONSENT_SECRET).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert claims_of(result["access_token"])["roles"] == ["Mail.Read"]

    control.request("DELETE", f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}/consent", json={})
    fresh = confidential_app(sim, NO_CONSENT_APP_ID, NO_CONSENT_SECRET).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert "roles" not in claims_of(fresh["access_token"])


def test_secret_id_instead_of_value_is_aadsts7000215(sim: SimServer) -> None:
    result = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET_ID).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert "not the client secret ID" in result["error_description"]
    assert f"for a secret added to app '{SERVICE_APP_ID}'" in result["error_description"]


def test_expired_secret_is_aadsts7000222(sim: SimServer, control: httpx.Client) -> None:
    added = control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}/secrets",
        json={"displayName": "short", "expires": "+1d"},
    ).json()
    app = confidential_app(sim, NO_CONSENT_APP_ID, added["value"])
    assert "access_token" in app.acquire_token_for_client(GRAPH_DEFAULT)

    control.post("/_sim/clock", json={"advanceSeconds": 2 * 86400})
    result = confidential_app(sim, NO_CONSENT_APP_ID, added["value"]).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000222]


def test_app_registered_in_another_tenant_is_aadsts700016(
    sim: SimServer, control: httpx.Client
) -> None:
    control.post("/_sim/tenants", json={"displayName": "Fabrikam", "domains": ["fabrikam.com"]})
    result = confidential_app(
        sim, SERVICE_APP_ID, SERVICE_SECRET, tenant="fabrikam.com"
    ).acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]
    assert "was not found in the directory 'Fabrikam'" in result["error_description"]


def test_disabled_app_is_aadsts7000112(sim: SimServer, control: httpx.Client) -> None:
    control.patch(f"/_sim/tenants/{CONTOSO}/apps/{SERVICE_APP_ID}", json={"disabled": True})
    result = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [7000112]


@pytest.mark.parametrize(
    ("scopes", "code"),
    [
        (["https://graph.microsoft.com/Mail.Read"], 1002012),
        (["Mail.Read", "Calendars.Read"], 70011),
        (["https://graph.microsoft.com/.default", "https://graph.microsoft.com/Mail.Read"], 70011),
        (["mail read"], 70011),
    ],
)
def test_client_credentials_accept_only_the_default_scope(
    sim: SimServer, scopes: list[str], code: int
) -> None:
    result = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET).acquire_token_for_client(scopes)
    assert result["error"] == "invalid_scope"
    assert result["error_codes"] == [code]


def test_unknown_resource_is_aadsts500011(sim: SimServer) -> None:
    result = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET).acquire_token_for_client(
        ["https://analysis.windows.net/powerbi/api/.default"]
    )
    assert result["error_codes"] == [500011]


@pytest.mark.parametrize("form", ["thumbprint", "public_certificate"])
def test_certificate_credential_gets_an_app_token(
    sim: SimServer, control: httpx.Client, form: str
) -> None:
    certificate = make_certificate()
    uploaded = control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{SERVICE_APP_ID}/certificates",
        json={"pem": certificate.certificate_pem, "displayName": "m365sync"},
    )
    assert uploaded.status_code == 201
    assert uploaded.json()["thumbprint"] == certificate.sha1_thumbprint
    credential = {"private_key": certificate.private_key_pem}
    if form == "thumbprint":
        credential["thumbprint"] = certificate.sha1_thumbprint
    else:
        credential["public_certificate"] = certificate.certificate_pem
    result = confidential_app(sim, SERVICE_APP_ID, credential).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert "access_token" in result, result
    claims = decode_access_token(sim.state, result["access_token"])
    assert claims["appidacr"] == "2"
    assert "Mail.ReadWrite" in claims["roles"]  # type: ignore[operator]


def test_certificate_not_uploaded_is_aadsts700027(sim: SimServer) -> None:
    certificate = make_certificate()
    credential = {
        "private_key": certificate.private_key_pem,
        "public_certificate": certificate.certificate_pem,
    }
    result = confidential_app(sim, SERVICE_APP_ID, credential).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert "not registered on application" in result["error_description"]


def test_assertion_signed_by_another_key_fails_signature_validation(
    sim: SimServer, control: httpx.Client
) -> None:
    uploaded, impostor = make_certificate(), make_certificate()
    control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{SERVICE_APP_ID}/certificates",
        json={"pem": uploaded.certificate_pem},
    )
    credential = {"private_key": impostor.private_key_pem, "thumbprint": uploaded.sha1_thumbprint}
    result = confidential_app(sim, SERVICE_APP_ID, credential).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["error_codes"] == [700027]
    assert "failed signature validation" in result["error_description"]


def test_azure_identity_client_secret_credential_gets_a_token(sim: SimServer) -> None:
    credential = ClientSecretCredential(
        DEMO_TENANT_ID,
        SERVICE_APP_ID,
        SERVICE_SECRET,
        authority=sim.url,
        disable_instance_discovery=True,
    )
    token = credential.get_token("https://graph.microsoft.com/.default")
    assert decode_access_token(sim.state, token.token)["appid"] == SERVICE_APP_ID


def test_token_requests_are_in_the_request_log(sim: SimServer, control: httpx.Client) -> None:
    control.delete("/_sim/requests")
    confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET).acquire_token_for_client(GRAPH_DEFAULT)
    confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET_ID).acquire_token_for_client(GRAPH_DEFAULT)
    log = control.get("/_sim/requests", params={"path_contains": "/oauth2/v2.0/token"}).json()[
        "value"
    ]
    assert [(r["method"], r["status"], r["appId"], r["tenantId"]) for r in log] == [
        ("POST", 200, SERVICE_APP_ID, DEMO_TENANT_ID),
        ("POST", 401, SERVICE_APP_ID, DEMO_TENANT_ID),
    ]
