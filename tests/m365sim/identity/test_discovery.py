"""OpenID discovery and signing keys, as MSAL and JWT libraries read them."""

from __future__ import annotations

import httpx
import jwt
import msal
import pytest

from m365sim.server import SimServer
from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID, SERVICE_SECRET
from support.entra_client import CONTOSO, confidential_app
from support.sim_tokens import GRAPH_DEFAULT


@pytest.mark.parametrize(
    "tenant", [DEMO_TENANT_ID, "contoso.com", "contoso.onmicrosoft.com", "CONTOSO.COM"]
)
def test_discovery_for_tenant_id_or_any_verified_domain_names_the_tenant(
    sim: SimServer, control: httpx.Client, tenant: str
) -> None:
    document = control.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
    assert document["issuer"] == f"{sim.url}/{DEMO_TENANT_ID}/v2.0"
    assert document["token_endpoint"] == f"{sim.url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    assert document["authorization_endpoint"] == f"{sim.url}/{DEMO_TENANT_ID}/oauth2/v2.0/authorize"
    assert document["jwks_uri"] == f"{sim.url}/{DEMO_TENANT_ID}/discovery/v2.0/keys"
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


@pytest.mark.parametrize("tenant", ["common", "organizations"])
def test_multi_tenant_discovery_uses_microsofts_placeholder_issuer(
    sim: SimServer, control: httpx.Client, tenant: str
) -> None:
    document = control.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
    assert document["issuer"] == f"{sim.url}/{{tenantid}}/v2.0"
    assert document["token_endpoint"] == f"{sim.url}/{tenant}/oauth2/v2.0/token"


def test_unknown_tenant_is_aadsts90002_and_msal_refuses_the_authority(
    sim: SimServer, control: httpx.Client
) -> None:
    answer = control.get("/fabrikam.example/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'fabrikam.example' not found.")
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()

    with pytest.raises(ValueError, match="double check your tenant name") as refused:
        confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET, tenant="fabrikam.example")
    assert "AADSTS90002" in str(refused.value.__context__)  # MSAL keeps Entra's answer there


def test_tokens_verify_against_the_advertised_jwks(sim: SimServer, control: httpx.Client) -> None:
    app = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET)
    token = app.acquire_token_for_client(GRAPH_DEFAULT)["access_token"]
    jwks_uri = control.get(f"/{CONTOSO}/v2.0/.well-known/openid-configuration").json()["jwks_uri"]
    keys = control.get(jwks_uri).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"] and keys[0]["x5c"]

    signing_key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, signing_key.key, algorithms=["RS256"], audience="https://graph.microsoft.com"
    )
    assert claims["appid"] == SERVICE_APP_ID
    assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"] == sim.state.signing_kid


def test_instance_discovery_answers_for_this_host(sim: SimServer) -> None:
    """An app that keeps MSAL's instance validation on can point it at m365sim."""
    app = msal.ConfidentialClientApplication(
        SERVICE_APP_ID,
        client_credential=SERVICE_SECRET,
        authority=sim.authority(CONTOSO),
        instance_discovery=f"{sim.url}/common/discovery/instance",
    )
    assert "access_token" in app.acquire_token_for_client(GRAPH_DEFAULT)
