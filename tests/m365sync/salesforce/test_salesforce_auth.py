"""Salesforce OAuth as m365sync signs in: JWT bearer, client credentials, the web server
flow with PKCE and refresh tokens, against sfsim's real token endpoint."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import certifi
import pytest
import requests

from m365sync.errors import ValidationFailed
from m365sync.salesforce import (
    ClientCredentialsFlow,
    ConsumerSecret,
    JwtBearerFlow,
    SalesforceClient,
    WebServerFlow,
    generate_signing_key,
    jwt_audience,
    normalize_login_url,
    revoke,
)
from m365sync.salesforce import errors as sf_errors
from m365sync.settings import Settings
from sfsim import SfServer
from support.demo import SALESFORCE_CALLBACK, SALESFORCE_CONSUMER_KEY, SALESFORCE_INTEGRATION_USER
from support.salesforce_world import (
    CONSUMER_SECRET,
    DEMO_KEY,
    REP,
    REP_PASSWORD,
    log_in_and_allow,
    salesforce_settings,
)


def jwt_flow(settings: Settings, **overrides: object) -> JwtBearerFlow:
    values: dict[str, object] = {
        "consumer_key": SALESFORCE_CONSUMER_KEY,
        "username": SALESFORCE_INTEGRATION_USER,
        "signing_key": DEMO_KEY,
    }
    values.update(overrides)
    return JwtBearerFlow(settings, **values)  # type: ignore[arg-type]


def test_jwt_bearer_gives_a_session_on_the_orgs_instance(
    sf: SfServer, sf_settings: Settings
) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    token = jwt_flow(sf_settings)()
    assert token.instance_url == sf.url
    assert (
        token.identity_url == f"https://login.salesforce.com/id/{sf.state.org.id}/{token.user_id}"
    )
    assert token.org_id == sf.state.org.id
    assert token.user_id.startswith("005")
    assert token.issued_at >= before
    assert "api" in token.scopes
    with SalesforceClient(sf_settings, jwt_flow(sf_settings), token=token) as client:
        assert client.query_all("SELECT Name FROM Account ORDER BY Name")[0]["Name"] == "Fabrikam"
    shown = repr(token)
    assert token.access_token not in shown
    assert "005" in shown


def test_jwt_bearer_through_salesforces_login_hosts(
    sf: SfServer, sf_settings: Settings, sf_session: requests.Session
) -> None:
    production = jwt_flow(sf_settings, login_url="https://login.salesforce.com", http=sf_session)
    assert production.audience == "https://login.salesforce.com"
    assert production().user_id
    my_domain = f"https://{sf.state.org.my_domain_host}"
    behind_my_domain = jwt_flow(sf_settings, login_url=my_domain, http=sf_session)
    assert behind_my_domain.audience == "https://login.salesforce.com"
    assert behind_my_domain().instance_url == sf.url
    # A sandbox answers only on the test login host, with that audience.
    sf.state.org.sandbox = "uat"
    with pytest.raises(sf_errors.LoginFailed) as wrong_host:
        production()
    assert "test.salesforce.com" in (wrong_host.value.fix or "")
    sandbox = jwt_flow(sf_settings, login_url="https://test.salesforce.com", http=sf_session)
    assert sandbox.audience == "https://test.salesforce.com"
    assert sandbox().user_id


@pytest.mark.parametrize(
    ("overrides", "category", "fix_mentions"),
    [
        ({"consumer_key": "3MVG9-unknown"}, sf_errors.ConsumerKeyWrong, "Consumer Details"),
        ({"username": REP}, sf_errors.AppNotApproved, "pre-authorized"),
        ({"username": "former@acme.example"}, sf_errors.UserInactive, "Reactivate"),
        ({"username": "nobody@acme.example"}, sf_errors.AppNotApproved, "pre-authorized"),
        ({"audience": "https://evil.example"}, sf_errors.AudienceInvalid, "test.salesforce.com"),
    ],
)
def test_jwt_bearer_refusals_say_what_to_fix(
    sf_settings: Settings,
    overrides: dict[str, object],
    category: type[sf_errors.AuthFailed],
    fix_mentions: str,
) -> None:
    with pytest.raises(category) as refused:
        jwt_flow(sf_settings, **overrides)()
    assert refused.value.category == sf_errors.ErrorCategory.AUTH_FAILED
    assert refused.value.reconnect
    assert fix_mentions in (refused.value.fix or "")


def test_jwt_signed_with_another_key_is_a_certificate_mismatch(sf_settings: Settings) -> None:
    with pytest.raises(sf_errors.CertificateMismatch) as refused:
        jwt_flow(sf_settings, signing_key=generate_signing_key("m365sync"))()
    assert refused.value.code == "invalid_grant"
    assert "Use digital signatures" in (refused.value.fix or "")


def test_expired_jwt_means_this_servers_clock_is_wrong(sf: SfServer, sf_settings: Settings) -> None:
    stale = jwt_flow(sf_settings).assertion(now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    answer = requests.post(
        sf.token_url,
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": stale},
        timeout=10,
    )
    error = sf_errors.classify_oauth_error(
        answer.json(), status=answer.status_code, flow="jwt_bearer"
    )
    assert isinstance(error, sf_errors.ClockSkew)
    assert "NTP" in (error.fix or "")


def test_client_credentials_on_the_my_domain(sf: SfServer, sf_settings: Settings) -> None:
    flow = ClientCredentialsFlow(
        sf_settings, consumer_key=SALESFORCE_CONSUMER_KEY, consumer_secret=CONSUMER_SECRET
    )
    token = flow()
    me = requests.get(
        f"{sf.url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {token.access_token}"},
        timeout=10,
    ).json()
    assert me["preferred_username"] == SALESFORCE_INTEGRATION_USER
    assert "sfsim-demo-consumer-secret" not in repr(flow)


def test_client_credentials_refusals(sf_settings: Settings, sf_session: requests.Session) -> None:
    on_login_host = ClientCredentialsFlow(
        sf_settings,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        login_url="https://login.salesforce.com",
        http=sf_session,
    )
    with pytest.raises(sf_errors.MyDomainRequired) as not_my_domain:
        on_login_host()
    assert "my.salesforce.com" in (not_my_domain.value.fix or "")
    wrong_secret = ClientCredentialsFlow(
        sf_settings, consumer_key=SALESFORCE_CONSUMER_KEY, consumer_secret=ConsumerSecret("nope")
    )
    with pytest.raises(sf_errors.ConsumerSecretWrong) as refused:
        wrong_secret()
    assert "Consumer Secret" in (refused.value.fix or "")


def test_client_credentials_without_a_run_as_user(sf: SfServer, sf_settings: Settings) -> None:
    sf.state.auth.apps[SALESFORCE_CONSUMER_KEY].client_credentials_user = None
    flow = ClientCredentialsFlow(
        sf_settings, consumer_key=SALESFORCE_CONSUMER_KEY, consumer_secret=CONSUMER_SECRET
    )
    with pytest.raises(sf_errors.ClientCredentialsOff) as refused:
        flow()
    assert "Run As" in (refused.value.fix or "")


def connect(sf_settings: Settings) -> WebServerFlow:
    return WebServerFlow(
        sf_settings,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        redirect_uri=SALESFORCE_CALLBACK,
    )


def test_connect_salesforce_with_pkce_then_refresh(sf: SfServer, sf_settings: Settings) -> None:
    flow = connect(sf_settings)
    started = flow.start()
    query = parse_qs(urlsplit(started.url).query)
    assert started.url.startswith(f"{sf.url}/services/oauth2/authorize?")
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [started.state]
    assert query["scope"] == ["api refresh_token"]
    assert started.code_verifier not in started.url
    assert started.code_verifier not in repr(started)
    callback = log_in_and_allow(started.url, username=REP, password=REP_PASSWORD)
    token = flow.finish(started, callback)
    assert token.refresh_token
    assert token.refresh_token not in repr(token)
    assert token.user_id == next(
        u["Id"] for u in sf.state.records.live("User") if u["Username"] == REP
    )
    # The code is single use: presenting the same callback again fails, in words.
    with pytest.raises(sf_errors.SignInIncomplete) as reused:
        flow.finish(started, callback)
    assert "already used" in reused.value.message
    # The refresh token keeps the connection alive, and is kept across refreshes.
    refresher = flow.refresher(token.refresh_token)
    refreshed = refresher()
    assert refreshed.access_token != token.access_token
    assert refreshed.refresh_token == token.refresh_token
    with SalesforceClient(sf_settings, refresher, token=refreshed) as client:
        assert len(client.query_all("SELECT Id FROM Account")) == 2
        assert client.api_usage is not None
    # Disconnect: revoking the refresh token ends the connection.
    revoke(sf_settings, token.refresh_token)
    with pytest.raises(sf_errors.ConnectionRevoked) as revoked:
        refresher()
    assert "Connect Salesforce again" in (revoked.value.fix or "")


def test_connect_salesforce_refuses_a_foreign_or_denied_callback(sf_settings: Settings) -> None:
    flow = connect(sf_settings)
    started = flow.start()
    with pytest.raises(sf_errors.SignInIncomplete) as mismatch:
        flow.finish(started, {"state": "someone-elses", "code": "aPrx-x"})
    assert mismatch.value.code == "state_mismatch"
    with pytest.raises(sf_errors.SignInIncomplete) as denied:
        flow.finish(
            started,
            {
                "state": started.state,
                "error": "access_denied",
                "error_description": "end-user denied authorization",
            },
        )
    assert "Allow" in (denied.value.fix or "")
    other = flow.start()
    callback = log_in_and_allow(other.url, username=REP, password=REP_PASSWORD)
    forged = type(other)(
        url=other.url, state=other.state, redirect_uri=SALESFORCE_CALLBACK, code_verifier="x" * 64
    )
    with pytest.raises(sf_errors.SignInIncomplete) as verifier:
        flow.finish(forged, callback)
    assert verifier.value.salesforce_message == "invalid code verifier"


def test_unregistered_callback_url_names_the_url_to_add(
    sf: SfServer, sf_settings: Settings
) -> None:
    flow = WebServerFlow(
        sf_settings,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        redirect_uri="https://crm-sync.contoso.example/salesforce/callback",
    )
    page = requests.get(flow.start().url, timeout=10)
    assert page.status_code == 400
    error = sf_errors.classify_oauth_error(
        {"error": "redirect_uri_mismatch", "error_description": ""},
        redirect_uri=flow.redirect_uri,
    )
    assert "redirect_uri_mismatch" in page.text
    assert flow.redirect_uri in (error.fix or "")


def test_the_ca_bundle_setting_wins_over_the_environment(
    sf: SfServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment trusts sfsim (the sf_server fixture set REQUESTS_CA_BUNDLE), but the
    # setting names a bundle that does not: the setting decides.
    settings = salesforce_settings(sf, tmp_path, ca_bundle=Path(certifi.where()))
    with pytest.raises(sf_errors.TlsUntrusted) as untrusted:
        jwt_flow(settings)()
    assert "CA bundle" in (untrusted.value.fix or "")
    assert jwt_flow(salesforce_settings(sf, tmp_path))().access_token


def test_login_urls_and_audiences() -> None:
    assert (
        normalize_login_url("https://acme.my.salesforce.com/") == "https://acme.my.salesforce.com"
    )
    with pytest.raises(ValidationFailed) as plain_http:
        normalize_login_url("http://login.salesforce.com")
    assert "https://" in (plain_http.value.fix or "")
    assert jwt_audience("https://acme--uat.sandbox.my.salesforce.com") == (
        "https://test.salesforce.com"
    )
    assert jwt_audience("https://acme.my.salesforce.com") == "https://login.salesforce.com"
    assert jwt_audience("https://127.0.0.1:8444") == "https://127.0.0.1:8444"


def test_an_unreadable_private_key_is_refused_with_a_fix() -> None:
    with pytest.raises(ValidationFailed) as unreadable:
        type(DEMO_KEY)(private_key_pem="-----BEGIN PRIVATE KEY-----\nnot a key\n")
    assert "PEM" in (unreadable.value.fix or "")
    generated = generate_signing_key("m365sync")
    assert "PRIVATE KEY" not in repr(generated)
    assert generated.certificate_fingerprint and ":" in generated.certificate_fingerprint
