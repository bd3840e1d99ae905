"""OAuth 2.0 as Salesforce does it, through simple-salesforce's own login code where it
has one: JWT bearer, client credentials, web server flow with PKCE, refresh tokens."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from sfsim import SfServer
from support.demo import (
    SALESFORCE_CALLBACK,
    SALESFORCE_CONSUMER_KEY,
    SALESFORCE_CONSUMER_SECRET,
    SALESFORCE_INTEGRATION_USER,
)
from support.sf_clients import (
    DEMO_KEY,
    MY_DOMAIN,
    authorize,
    client_credentials_token,
    code_from,
    pkce_pair,
)


def test_jwt_bearer_through_simple_salesforce(sf: SfServer, sf_session: requests.Session) -> None:
    client = Salesforce(
        username=SALESFORCE_INTEGRATION_USER,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        privatekey_file=str(DEMO_KEY),
        session=sf_session,
    )
    accounts = client.query("SELECT Name FROM Account ORDER BY Name")
    assert [r["Name"] for r in accounts["records"]] == ["Fabrikam", "Northwind Traders"]


def test_jwt_bearer_refuses_a_user_the_admin_did_not_approve(
    sf: SfServer, sf_session: requests.Session
) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        Salesforce(
            username="rep@acme.example",
            consumer_key=SALESFORCE_CONSUMER_KEY,
            privatekey_file=str(DEMO_KEY),
            session=sf_session,
        )
    assert failed.value.code == "invalid_app_access"
    assert "user is not admin approved to access this app" in str(failed.value)


def test_jwt_bearer_for_a_sandbox_must_use_the_test_login_host(
    sf: SfServer, sf_session: requests.Session
) -> None:
    sf.state.org.sandbox = "uat"
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        Salesforce(
            username=SALESFORCE_INTEGRATION_USER,
            consumer_key=SALESFORCE_CONSUMER_KEY,
            privatekey_file=str(DEMO_KEY),
            session=sf_session,
        )
    assert failed.value.code == "invalid_grant"
    client = Salesforce(
        username=SALESFORCE_INTEGRATION_USER,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        privatekey_file=str(DEMO_KEY),
        session=sf_session,
        domain="test",
    )
    assert client.query("SELECT COUNT() FROM Contact")["totalSize"] == 3


def test_client_credentials_through_simple_salesforce_on_my_domain(
    sf: SfServer, sf_session: requests.Session
) -> None:
    client = Salesforce(
        consumer_key=SALESFORCE_CONSUMER_KEY,
        consumer_secret=SALESFORCE_CONSUMER_SECRET,
        domain=MY_DOMAIN,
        session=sf_session,
    )
    me = sf_session.get(
        f"{sf.url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {client.session_id}"},
    ).json()
    assert me["preferred_username"] == SALESFORCE_INTEGRATION_USER


def test_client_credentials_is_refused_on_the_shared_login_host(
    sf: SfServer, sf_session: requests.Session
) -> None:
    answer = sf_session.post(
        "https://login.salesforce.com/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(SALESFORCE_CONSUMER_KEY, SALESFORCE_CONSUMER_SECRET),
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "request not supported on this domain",
    }


def test_token_answer_has_salesforce_fields(sf: SfServer) -> None:
    token = client_credentials_token(sf)
    assert set(token) == {
        "access_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert token["instance_url"] == sf.url
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith(sf.state.org.id[:15] + "!")
    assert token["id"].startswith(f"https://login.salesforce.com/id/{sf.state.org.id}/005")
    assert token["issued_at"].isdigit()


@pytest.mark.parametrize(
    ("key", "secret", "error"),
    [
        (
            SALESFORCE_CONSUMER_KEY,
            "wrong",
            {"error": "invalid_client", "error_description": "invalid client credentials"},
        ),
        (
            "unknown",
            "x",
            {"error": "invalid_client_id", "error_description": "client identifier invalid"},
        ),
    ],
)
def test_client_credentials_errors(
    sf: SfServer, key: str, secret: str, error: dict[str, str]
) -> None:
    answer = requests.post(
        sf.token_url, data={"grant_type": "client_credentials"}, auth=(key, secret)
    )
    assert answer.status_code == 400
    assert answer.json() == error


def test_unknown_grant_type(sf: SfServer) -> None:
    answer = requests.post(sf.token_url, data={"grant_type": "magic"})
    assert answer.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


def test_web_server_flow_with_pkce_and_refresh(sf: SfServer) -> None:
    session = requests.Session()
    verifier, challenge = pkce_pair()
    redirect = authorize(
        sf, session, username="rep@acme.example", password="Demo-Rep-1!", challenge=challenge
    )
    assert redirect.headers["location"].startswith(SALESFORCE_CALLBACK + "?code=")
    assert "state=xyz" in redirect.headers["location"]
    code = code_from(redirect)
    token = requests.post(
        sf.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": SALESFORCE_CALLBACK,
            "client_id": SALESFORCE_CONSUMER_KEY,
            "client_secret": SALESFORCE_CONSUMER_SECRET,
            "code_verifier": verifier,
        },
    ).json()
    assert token["refresh_token"]
    reused = requests.post(
        sf.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": SALESFORCE_CALLBACK,
            "client_id": SALESFORCE_CONSUMER_KEY,
            "client_secret": SALESFORCE_CONSUMER_SECRET,
            "code_verifier": verifier,
        },
    )
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "invalid authorization code",
    }
    refreshed = requests.post(
        sf.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": SALESFORCE_CONSUMER_KEY,
            "client_secret": SALESFORCE_CONSUMER_SECRET,
        },
    ).json()
    assert "refresh_token" not in refreshed
    client = Salesforce(
        instance_url=refreshed["instance_url"], session_id=refreshed["access_token"]
    )
    assert client.query("SELECT COUNT() FROM Account")["totalSize"] == 2
    # Revoking the refresh token ends it and the sessions it made.
    assert (
        requests.post(
            f"{sf.url}/services/oauth2/revoke", data={"token": token["refresh_token"]}
        ).status_code
        == 200
    )
    again = requests.post(
        sf.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": SALESFORCE_CONSUMER_KEY,
            "client_secret": SALESFORCE_CONSUMER_SECRET,
        },
    )
    assert again.json()["error_description"] == "expired access/refresh token"


def test_web_server_flow_rejects_a_wrong_code_verifier(sf: SfServer) -> None:
    _, challenge = pkce_pair()
    code = code_from(
        authorize(
            sf,
            requests.Session(),
            username="rep@acme.example",
            password="Demo-Rep-1!",
            challenge=challenge,
        )
    )
    answer = requests.post(
        sf.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": SALESFORCE_CALLBACK,
            "client_id": SALESFORCE_CONSUMER_KEY,
            "client_secret": SALESFORCE_CONSUMER_SECRET,
            "code_verifier": "wrong",
        },
    )
    assert answer.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}


def test_authorize_page_refuses_an_unregistered_callback(sf: SfServer) -> None:
    page = requests.get(
        f"{sf.url}/services/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": SALESFORCE_CONSUMER_KEY,
            "redirect_uri": "https://evil.example/cb",
        },
    )
    assert page.status_code == 400
    assert "redirect_uri_mismatch" in page.text


def test_expired_session_answers_invalid_session_id_and_jwt_client_logs_in_again(
    sf: SfServer, sf_session: requests.Session
) -> None:
    client = Salesforce(
        username=SALESFORCE_INTEGRATION_USER,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        privatekey_file=str(DEMO_KEY),
        session=sf_session,
    )
    first = client.session_id
    requests.post(f"{sf.url}/_sim/clock", json={"advanceSeconds": 7201})
    raw = requests.get(
        f"{sf.url}/services/data/v59.0/limits", headers={"Authorization": f"Bearer {first}"}
    )
    assert raw.status_code == 401
    assert raw.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    # simple-salesforce refreshes on INVALID_SESSION_ID (it logs in again) and retries once.
    assert client.query("SELECT COUNT() FROM Lead")["totalSize"] == 1
    assert client.session_id != first
