"""User connections: the authorization code flow with PKCE through the sign-in pages,
silent refresh, and the reasons a user must reconnect."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import msal
import pytest
import requests

from m365sim.graph.auth import decode_access_token
from m365sim.server import SimServer
from support.demo import (
    DEMO_TENANT_ID,
    NO_CONSENT_APP_ID,
    NO_CONSENT_SECRET,
    SERVICE_APP_ID,
    SERVICE_SECRET,
    USER_APP_ID,
    USER_APP_SECRET,
)
from support.entra_client import CONTOSO, REDIRECT_URI, Browser, confidential_app

pytestmark = [
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msal.*"),
]

ADELE = ("adele@contoso.com", "Demo-User-1!")
ADELE_ID = "00000000-0000-4000-8000-00000000a002"
ADMIN = ("admin@contoso.com", "Demo-Admin-1!")
SCOPES = ["Mail.ReadWrite", "Calendars.ReadWrite"]


def user_app(sim: SimServer) -> msal.ConfidentialClientApplication:
    return confidential_app(sim, USER_APP_ID, USER_APP_SECRET)


def connect(
    sim: SimServer,
    browser: Browser,
    user: tuple[str, str] = ADELE,
    scopes: list[str] = SCOPES,
    **flow_options: Any,
) -> tuple[msal.ConfidentialClientApplication, dict[str, Any], dict[str, Any]]:
    """ "Connect your Office 365": the app starts the flow, the user signs in and consents."""
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT_URI, **flow_options)
    answer = browser.sign_in(flow["auth_uri"], *user)
    return app, flow, app.acquire_token_by_auth_code_flow(flow, answer)


def test_auth_code_flow_with_pkce_issues_user_tokens(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    app, flow, result = connect(sim, browser)
    assert "access_token" in result, result
    assert browser.visited == ["Sign in", "Permissions requested"]
    assert (
        "code_challenge=" in flow["auth_uri"] and "code_challenge_method=S256" in flow["auth_uri"]
    )

    access = decode_access_token(sim.state, result["access_token"])  # what Graph accepts
    assert access["idtyp"] == "user"
    assert access["oid"] == ADELE_ID
    assert access["upn"] == access["unique_name"] == "adele@contoso.com"
    assert access["name"] == "Adele Vance"
    assert access["appid"] == USER_APP_ID
    assert set(str(access["scp"]).split()) >= {"Mail.ReadWrite", "Calendars.ReadWrite"}
    assert "roles" not in access
    assert set(result["scope"].split()) >= set(SCOPES)
    assert result["refresh_token"] and result["expires_in"] > 3000

    jwks_uri = control.get(f"/{CONTOSO}/v2.0/.well-known/openid-configuration").json()["jwks_uri"]
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(result["id_token"]).key
    id_claims = jwt.decode(result["id_token"], key, algorithms=["RS256"], audience=USER_APP_ID)
    assert id_claims["iss"] == f"{sim.url}/{DEMO_TENANT_ID}/v2.0"
    sent_nonce = parse_qs(urlparse(flow["auth_uri"]).query)["nonce"][0]  # MSAL sends a hash
    assert id_claims["nonce"] == sent_nonce == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert id_claims["oid"] == ADELE_ID and id_claims["tid"] == DEMO_TENANT_ID
    assert id_claims["preferred_username"] == "adele@contoso.com"

    client_info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert client_info == {"uid": ADELE_ID, "utid": DEMO_TENANT_ID}
    (account,) = app.get_accounts()
    assert account["home_account_id"] == f"{ADELE_ID}.{DEMO_TENANT_ID}"


def test_consent_is_asked_once(sim: SimServer, browser: Browser) -> None:
    connect(sim, browser)
    with Browser(sim) as fresh_browser:
        _, _, result = connect(sim, fresh_browser)
    assert "access_token" in result
    assert fresh_browser.visited == ["Sign in"]


def test_signed_in_account_is_picked_without_typing_the_password_again(
    sim: SimServer, browser: Browser
) -> None:
    connect(sim, browser)
    browser.visited.clear()
    _, _, result = connect(sim, browser, prompt="select_account")
    assert browser.visited == ["Pick an account"]
    assert result["id_token_claims"]["preferred_username"] == "adele@contoso.com"


def test_declining_consent_returns_access_denied(sim: SimServer, browser: Browser) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = browser.sign_in(flow["auth_uri"], *ADELE, consent="Cancel")
    result = app.acquire_token_by_auth_code_flow(flow, answer)
    assert result["error"] == "access_denied"
    assert result["error_description"].startswith("AADSTS65004")


def test_prompt_none_without_consent_is_consent_required(sim: SimServer, browser: Browser) -> None:
    connect(sim, browser, scopes=["User.Read"])
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, prompt="none")
    answer = browser.open(flow["auth_uri"])
    assert isinstance(answer, dict)
    assert answer["error"] == "consent_required"
    assert answer["error_description"].startswith("AADSTS65001")


def test_admin_consents_for_the_organization_and_users_are_not_asked(
    sim: SimServer, browser: Browser
) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = browser.sign_in(flow["auth_uri"], *ADMIN, for_organization=True)
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, answer)
    with Browser(sim) as adele_browser:
        _, _, result = connect(sim, adele_browser)
    assert "access_token" in result
    assert adele_browser.visited == ["Sign in"]


def test_admin_only_scope_shows_need_admin_approval(sim: SimServer, browser: Browser) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(["User.Read.All"], redirect_uri=REDIRECT_URI)
    page = browser.open(flow["auth_uri"])
    assert not isinstance(page, dict)
    page = browser.submit(page, "Sign in", {"login": ADELE[0], "passwd": ADELE[1]})
    assert not isinstance(page, dict) and page.title == "Need admin approval"
    answer = browser.submit(page, "Return to the application")
    assert isinstance(answer, dict)
    assert answer["error"] == "access_denied"
    assert answer["error_description"].startswith("AADSTS90094")


def test_wrong_password_is_shown_on_the_page(sim: SimServer, browser: Browser) -> None:
    flow = user_app(sim).initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    page = browser.open(flow["auth_uri"])
    assert not isinstance(page, dict)
    page = browser.submit(page, "Sign in", {"login": ADELE[0], "passwd": "nope"})
    assert not isinstance(page, dict) and page.title == "Sign in"
    assert "AADSTS50126" in page.text and "incorrect" in page.text


def test_unregistered_redirect_uri_is_aadsts50011_on_the_page(
    sim: SimServer, browser: Browser
) -> None:
    flow = user_app(sim).initiate_auth_code_flow(
        SCOPES, redirect_uri="https://evil.example/callback"
    )
    page = browser.open(flow["auth_uri"])
    assert not isinstance(page, dict)
    assert page.response.status_code == 400
    assert "AADSTS50011" in page.text and "https://evil.example/callback" in page.text


def test_form_post_response_mode_posts_the_code_back(sim: SimServer, browser: Browser) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, response_mode="form_post")
    page = browser.open(flow["auth_uri"])
    assert not isinstance(page, dict)
    page = browser.submit(page, "Sign in", {"login": ADELE[0], "passwd": ADELE[1]})
    assert not isinstance(page, dict)
    page = browser.submit(page, "Accept")
    assert not isinstance(page, dict)
    (form,) = page.forms
    assert form.action == REDIRECT_URI and form.method == "post"
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, form.fields)


# -- redeeming the code ----------------------------------------------------------------------
def test_wrong_pkce_verifier_is_aadsts501481(sim: SimServer, browser: Browser) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = browser.sign_in(flow["auth_uri"], *ADELE)
    flow["code_verifier"] = "x" * 43
    result = app.acquire_token_by_auth_code_flow(flow, answer)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [501481]


def test_code_redeemed_twice_is_aadsts54005(sim: SimServer, browser: Browser) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = browser.sign_in(flow["auth_uri"], *ADELE)
    assert "access_token" in app.acquire_token_by_auth_code_flow(dict(flow), answer)
    again = app.acquire_token_by_authorization_code(
        answer["code"],
        SCOPES,
        redirect_uri=REDIRECT_URI,
        data={"code_verifier": flow["code_verifier"]},
    )
    assert again["error_codes"] == [54005]


def test_unknown_or_expired_code_is_aadsts70008(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = browser.sign_in(flow["auth_uri"], *ADELE)
    control.post("/_sim/clock", json={"advanceSeconds": 11 * 60})
    assert app.acquire_token_by_auth_code_flow(flow, answer)["error_codes"] == [70008]


def test_redirect_uri_not_registered_at_the_token_endpoint_is_aadsts50011(
    sim: SimServer, browser: Browser
) -> None:
    app = user_app(sim)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = browser.sign_in(flow["auth_uri"], *ADELE)
    result = app.acquire_token_by_authorization_code(
        answer["code"],
        SCOPES,
        redirect_uri="https://evil.example/cb",
        data={"code_verifier": flow["code_verifier"]},
    )
    assert result["error_codes"] == [50011]


# -- refresh -----------------------------------------------------------------------------------
def test_expiring_access_token_is_refreshed_silently_with_a_rotated_refresh_token(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    control.patch(
        "/_sim/config", json={"access_token_lifetime_seconds": 240}
    )  # MSAL refreshes < 5 min
    app, _, first = connect(sim, browser)
    (account,) = app.get_accounts()
    refreshed = app.acquire_token_silent(SCOPES, account=account)
    assert refreshed is not None and refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert decode_access_token(sim.state, refreshed["access_token"])["oid"] == ADELE_ID
    (refresh_token,) = app.token_cache.find(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    assert refresh_token["secret"] != first["refresh_token"]


def test_refresh_token_unused_for_90_days_is_aadsts700082(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    app, _, _ = connect(sim, browser)
    (account,) = app.get_accounts()
    control.post("/_sim/clock", json={"advanceSeconds": 91 * 86400})
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert result is not None
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [700082]


def test_revoked_sessions_are_aadsts50173_until_the_user_signs_in_again(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    app, _, _ = connect(sim, browser)
    (account,) = app.get_accounts()
    revoked = control.post(f"/_sim/tenants/{CONTOSO}/users/{ADELE[0]}/revokeSessions")
    assert revoked.json()["sessionsRevokedAt"]
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert result is not None and result["error_codes"] == [50173]

    with Browser(sim) as fresh_browser:
        _, _, again = connect(sim, fresh_browser)
    assert "access_token" in again


def test_refresh_after_consent_is_revoked_is_aadsts65001(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    app, _, _ = connect(sim, browser)
    (account,) = app.get_accounts()
    control.request(
        "DELETE",
        f"/_sim/tenants/{CONTOSO}/apps/{USER_APP_ID}/delegatedConsent",
        json={"user": ADELE[0]},
    )
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert result is not None
    assert result["error_codes"] == [65001]
    assert result["suberror"] == "consent_required"


def test_refresh_for_an_admin_only_scope_is_aadsts90094(sim: SimServer, browser: Browser) -> None:
    app, _, _ = connect(sim, browser)
    (account,) = app.get_accounts()
    result = app.acquire_token_silent_with_error(
        ["User.Read.All"], account=account, force_refresh=True
    )
    assert result is not None and result["error_codes"] == [90094]


# -- password grant (ROPC) ----------------------------------------------------------------------
class _PortKeepingSession(requests.Session):
    """MSAL's password flow asks ``https://{host}/common/userrealm/...`` and drops the
    authority's port (harmless against login.microsoftonline.com on 443). This transport,
    injected through MSAL's ``http_client``, puts m365sim's port back."""

    def __init__(self, sim: SimServer) -> None:
        super().__init__()
        self.portless = "https://" + urlparse(sim.url).hostname  # type: ignore[operator]
        self.origin = sim.url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if url.startswith(self.portless + "/"):
            url = self.origin + url[len(self.portless) :]
        return super().request(method, url, *args, **kwargs)


def password_app(sim: SimServer) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        USER_APP_ID,
        client_credential=USER_APP_SECRET,
        authority=sim.authority(CONTOSO),
        instance_discovery=False,
        http_client=_PortKeepingSession(sim),
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_password_grant_answers_with_the_aadsts_code_of_each_mistake(
    sim: SimServer, control: httpx.Client
) -> None:
    app = password_app(sim)
    assert app.acquire_token_by_username_password(ADELE[0], "wrong", SCOPES)["error_codes"] == [
        50126
    ]
    assert app.acquire_token_by_username_password("nobody@contoso.com", "x", SCOPES)[
        "error_codes"
    ] == [50034]
    assert app.acquire_token_by_username_password(*ADELE, SCOPES)["error_codes"] == [65001]
    assert app.acquire_token_by_username_password(*ADELE, ["User.Read.All"])["error_codes"] == [
        90094
    ]
    disabled = app.acquire_token_by_username_password("former@contoso.com", "Demo-User-1!", SCOPES)
    assert disabled["error_codes"] == [50057]

    control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{USER_APP_ID}/delegatedConsent",
        json={"user": ADELE[0], "scopes": SCOPES},
    )
    app = password_app(sim)  # MSAL replays a failed request's answer from its own cache for a while
    granted = app.acquire_token_by_username_password(*ADELE, SCOPES)
    assert "access_token" in granted, granted
    assert set(str(decode_access_token(sim.state, granted["access_token"])["scp"]).split()) >= set(
        SCOPES
    )


# -- admin consent endpoint ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["adminconsent", "v2.0/adminconsent"])
def test_admin_consent_endpoint_grants_application_permissions(
    sim: SimServer, browser: Browser, control: httpx.Client, path: str
) -> None:
    callback = "https://crm.example/admin/consent-callback"
    control.patch(
        f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}", json={"redirectUris": [callback]}
    )
    url = (
        f"{sim.url}/{CONTOSO}/{path}?client_id={NO_CONSENT_APP_ID}&redirect_uri={callback}&state=s1"
    )
    if path.startswith("v2.0"):
        url += "&scope=https://graph.microsoft.com/.default"
    answer = browser.sign_in(url, *ADMIN)
    assert answer["admin_consent"] == "True"
    assert answer["tenant"] == DEMO_TENANT_ID and answer["state"] == "s1"
    app = confidential_app(sim, NO_CONSENT_APP_ID, NO_CONSENT_SECRET)
    token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]
    assert decode_access_token(sim.state, token)["roles"] == [
        "Calendars.Read", "Calendars.ReadWrite", "Mail.Read", "Mail.ReadWrite"
    ]  # fmt: skip


def test_admin_consent_endpoint_needs_an_administrator(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    callback = "https://crm.example/admin/consent-callback"
    control.patch(
        f"/_sim/tenants/{CONTOSO}/apps/{NO_CONSENT_APP_ID}", json={"redirectUris": [callback]}
    )
    page = browser.open(
        f"{sim.url}/{CONTOSO}/adminconsent?client_id={NO_CONSENT_APP_ID}&redirect_uri={callback}"
    )
    assert not isinstance(page, dict)
    page = browser.submit(page, "Sign in", {"login": ADELE[0], "passwd": ADELE[1]})
    assert not isinstance(page, dict) and page.title == "Need admin approval"
    tenant = sim.state.find_tenant(CONTOSO)
    assert (
        tenant is not None
        and not tenant.service_principals[NO_CONSENT_APP_ID].granted_application_permissions
    )


# -- multi-tenant authorities ---------------------------------------------------------------
def test_multi_tenant_app_signs_users_in_through_organizations(
    sim: SimServer, browser: Browser
) -> None:
    app = confidential_app(sim, USER_APP_ID, USER_APP_SECRET, tenant="organizations")
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    result = app.acquire_token_by_auth_code_flow(flow, browser.sign_in(flow["auth_uri"], *ADELE))
    assert result["id_token_claims"]["tid"] == DEMO_TENANT_ID


def test_single_tenant_app_on_common_is_aadsts50194(sim: SimServer) -> None:
    app = confidential_app(sim, SERVICE_APP_ID, "x", tenant="common")
    assert app.acquire_token_for_client(["https://graph.microsoft.com/.default"])[
        "error_codes"
    ] == [50194]


def test_userinfo_returns_the_signed_in_user(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    _, _, result = connect(sim, browser)
    userinfo = control.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {result['access_token']}"}
    ).json()
    assert userinfo["name"] == "Adele Vance" and userinfo["email"] == "adele@contoso.com"


def test_revoked_sessions_sign_the_browser_out_too(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    connect(sim, browser)
    control.post(f"/_sim/tenants/{CONTOSO}/users/{ADELE[0]}/revokeSessions")
    browser.visited.clear()
    _, _, result = connect(sim, browser)
    assert "access_token" in result
    assert browser.visited == ["Sign in"]


def test_issued_tokens_are_accepted_by_graph(
    sim: SimServer, browser: Browser, control: httpx.Client
) -> None:
    _, _, delegated = connect(sim, browser, scopes=["User.Read", *SCOPES])
    me = control.get("/v1.0/me", headers={"Authorization": f"Bearer {delegated['access_token']}"})
    assert me.status_code == 200 and me.json()["userPrincipalName"] == "adele@contoso.com"

    app = confidential_app(sim, SERVICE_APP_ID, SERVICE_SECRET)
    app_token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])[
        "access_token"
    ]
    user = control.get(f"/v1.0/users/{ADELE_ID}", headers={"Authorization": f"Bearer {app_token}"})
    assert user.status_code == 200 and user.json()["displayName"] == "Adele Vance"
