"""``/services/oauth2/*`` and the identity URL: parse the request, ask the ``AuthBackend``
and the org's users, answer in Salesforce's shapes.

Login hosts: a request reaching sfsim through a Salesforce host name (the ``Host``
header, e.g. from a transport that routes ``login.salesforce.com`` to sfsim) must use
one this org answers on: ``login.salesforce.com`` (production), ``test.salesforce.com``
(sandbox), or its My Domain. Requests to sfsim's own address are its My Domain. The
client credentials flow works only on the My Domain, as in Salesforce.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sfsim.exceptions import OAuthError
from sfsim.http import JSONResponse, sf_state
from sfsim.oauth import exceptions as oerr
from sfsim.oauth.models import ConnectedApp
from sfsim.state import PRODUCTION_LOGIN_HOST, SANDBOX_LOGIN_HOST, SfState


def _host(request: Request) -> str:
    return (request.headers.get("host") or "").split(":")[0].lower()


def _login_host(state: SfState, request: Request) -> str:
    """The login host the request came in on, checked against the org's hosts."""
    host = _host(request)
    org = state.org
    if not host.endswith("salesforce.com"):
        return org.my_domain_host
    if host in (PRODUCTION_LOGIN_HOST, SANDBOX_LOGIN_HOST):
        if host != org.login_host:
            # A production user name is unknown to the sandbox login host, and vice versa.
            raise oerr.InvalidGrant("authentication failure")
        return host
    if host != org.my_domain_host:
        raise oerr.InvalidGrant("authentication failure")
    return host


def _user_by_username(state: SfState, username: str) -> dict[str, Any] | None:
    lowered = username.lower()
    return next((u for u in state.records.live("User") if u["Username"].lower() == lowered), None)


def _app(state: SfState, client_id: str | None) -> ConnectedApp:
    app = state.auth.apps.get(client_id or "")
    if app is None:
        raise oerr.InvalidClientId()
    return app


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            raise oerr.InvalidClient() from None
        key, _, secret = decoded.partition(":")
        return key, secret
    return form.get("client_id"), form.get("client_secret")


def _approved(app: ConnectedApp, user: dict[str, Any]) -> bool:
    return app.pre_authorized is None or user["Username"].lower() in {
        u.lower() for u in app.pre_authorized
    }


async def token(request: Request) -> Response:
    """OAuth 2.0 token endpoint: JWT bearer, client credentials, authorization code
    (web server flow with PKCE), refresh token and username-password grants."""
    state = sf_state(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    grant = form.get("grant_type")
    handlers = {
        "urn:ietf:params:oauth:grant-type:jwt-bearer": _jwt_bearer,
        "client_credentials": _client_credentials_grant,
        "authorization_code": _authorization_code,
        "refresh_token": _refresh_token,
        "password": _password,
    }
    handler = handlers.get(grant or "")
    if handler is None:
        raise oerr.UnsupportedGrantType()
    answer = handler(state, request, form)
    return JSONResponse(
        answer, headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"}
    )


def _jwt_bearer(state: SfState, request: Request, form: dict[str, str]) -> dict[str, Any]:
    _login_host(state, request)  # refuses a login host this org does not answer on
    assertion = form.get("assertion", "")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise oerr.InvalidGrant("invalid assertion") from None
    app = _app(state, str(unverified.get("iss", "")))
    if app.certificate_pem is None:
        raise oerr.InvalidGrant("invalid assertion")
    public_key = x509.load_pem_x509_certificate(app.certificate_pem.encode()).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise oerr.InvalidGrant("invalid assertion")
    audiences = {
        f"https://{state.org.login_host}",
        f"https://{state.org.my_domain_host}",
        state.base_url,
    }
    try:
        claims = jwt.decode(
            assertion,
            public_key,
            algorithms=["RS256"],
            options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise oerr.InvalidGrant("expired authorization code") from None
    except jwt.PyJWTError:
        raise oerr.InvalidGrant("invalid assertion") from None
    aud = claims["aud"]
    if (aud if isinstance(aud, str) else "").rstrip("/") not in audiences:
        raise oerr.InvalidGrant("audience is invalid")
    user = _user_by_username(state, str(claims["sub"]))
    if user is None:
        raise oerr.InvalidGrant("user hasn't approved this consumer")
    if not user["IsActive"]:
        raise oerr.InvalidGrant("inactive user")
    if app.pre_authorized is None:
        # "All users may self-authorize": the user must have approved the app once.
        if user["Id"] not in _self_approved(state, app):
            raise oerr.InvalidGrant("user hasn't approved this consumer")
    elif not _approved(app, user):
        raise oerr.InvalidAppAccess()
    return state.auth.issue(
        app,
        user["Id"],
        scope=" ".join(s for s in app.scopes if s != "refresh_token") or "api",
    )


def _self_approved(state: SfState, app: ConnectedApp) -> set[str]:
    """Users who approved ``app`` themselves through the authorize page."""
    return {g.user_id for g in state.auth.refresh_tokens.values() if g.app is app}


def _client_credentials_grant(
    state: SfState, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    if _login_host(state, request) in (PRODUCTION_LOGIN_HOST, SANDBOX_LOGIN_HOST):
        raise oerr.InvalidGrant("request not supported on this domain")
    key, secret = _client_credentials(request, form)
    app = _app(state, key)
    if not secret or secret != app.consumer_secret:
        raise oerr.InvalidClient()
    if not app.client_credentials_user:
        raise oerr.InvalidGrant("no client credentials user enabled")
    user = _user_by_username(state, app.client_credentials_user)
    if user is None or not user["IsActive"]:
        raise oerr.InvalidGrant("no client credentials user enabled")
    return state.auth.issue(
        app,
        user["Id"],
        scope=" ".join(s for s in app.scopes if s != "refresh_token") or "api",
    )


def _authorization_code(state: SfState, request: Request, form: dict[str, str]) -> dict[str, Any]:
    _login_host(state, request)  # refuses a login host this org does not answer on
    key, secret = _client_credentials(request, form)
    app = _app(state, key)
    if secret is not None and secret != app.consumer_secret:
        raise oerr.InvalidClient()
    if secret is None and app.require_secret_for_web_server_flow:
        raise oerr.InvalidClient("invalid client credentials")
    code = state.auth.codes.pop(form.get("code", ""), None)
    if code is None or code.app is not app:
        raise oerr.InvalidGrant("invalid authorization code")
    if code.expires_at <= state.now():
        raise oerr.InvalidGrant("expired authorization code")
    if form.get("redirect_uri") != code.redirect_uri:
        raise oerr.InvalidGrant("redirect_uri must match configuration")
    if code.code_challenge is not None:
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if not verifier or digest.decode() != code.code_challenge:
            raise oerr.InvalidGrant("invalid code verifier")
    elif app.require_pkce:
        raise oerr.InvalidGrant("invalid code verifier")
    return state.auth.issue(
        app,
        code.user_id,
        scope=code.scope,
        refresh="refresh_token" in code.scope.split(),
    )


def _refresh_token(state: SfState, request: Request, form: dict[str, str]) -> dict[str, Any]:
    _login_host(state, request)  # refuses a login host this org does not answer on
    key, secret = _client_credentials(request, form)
    app = _app(state, key)
    if secret is not None and secret != app.consumer_secret:
        raise oerr.InvalidClient()
    grant = state.auth.refresh_tokens.get(form.get("refresh_token", ""))
    if grant is None or grant.revoked or grant.app is not app:
        raise oerr.InvalidGrant("expired access/refresh token")
    user = state.records.find(grant.user_id)
    if user is None or not user[1]["IsActive"]:
        raise oerr.InvalidGrant("inactive user")
    return state.auth.issue(app, grant.user_id, scope=grant.scope)


def _password(state: SfState, request: Request, form: dict[str, str]) -> dict[str, Any]:
    _login_host(state, request)  # refuses a login host this org does not answer on
    key, secret = _client_credentials(request, form)
    app = _app(state, key)
    if secret != app.consumer_secret:
        raise oerr.InvalidClient()
    user = _user_by_username(state, form.get("username", ""))
    if (
        user is None
        or not user["IsActive"]
        or state.auth.passwords.get(user["Id"]) != form.get("password")
    ):
        raise oerr.InvalidGrant("authentication failure")
    return state.auth.issue(
        app,
        user["Id"],
        scope=" ".join(s for s in app.scopes if s != "refresh_token") or "api",
    )


async def revoke(request: Request) -> Response:
    """Revoke an access token or a refresh token (and its sessions)."""
    state = sf_state(request)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.form()).items()})
    if not state.auth.revoke(params.get("token", "")):
        raise oerr.UnsupportedTokenType()
    return Response(status_code=200)


_LOGIN_PAGE = """<!doctype html><html><head><title>Login | Salesforce (sfsim)</title></head>
<body><h1>{org}</h1><p>Log in to allow <b>{app}</b> to access your data
({scope}).</p>{error}<form method="post" action="/services/oauth2/authorize">
{hidden}<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="pw" type="password" autocomplete="current-password"></label>
<button name="decision" value="allow" type="submit">Log In and Allow</button>
<button name="decision" value="deny" type="submit">Deny</button></form></body></html>"""

_AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "prompt",
)


def _error_page(error: OAuthError) -> HTMLResponse:
    text = html.escape(f"error={error.code}&error_description={error.detail}")
    return HTMLResponse(
        f"<!doctype html><html><body><h1>Remote Access Authorization Error</h1><p>{text}</p>"
        "</body></html>",
        status_code=400,
    )


async def authorize(request: Request) -> Response:
    """Web server flow: GET shows the login and approval page; POST logs in and redirects
    to the callback with ``code`` (and ``state``)."""
    state = sf_state(request)
    params = {k: str(v) for k, v in request.query_params.items()}
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.form()).items()})
    app = state.auth.apps.get(params.get("client_id", ""))
    if app is None:
        return _error_page(oerr.InvalidClientId())
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.callback_urls:
        return _error_page(oerr.RedirectUriMismatch())
    if params.get("response_type") != "code":
        return _redirect(
            redirect_uri,
            {
                "error": "unsupported_response_type",
                "error_description": "response type not supported",
            },
            params,
        )
    challenge = params.get("code_challenge") or None
    if challenge is not None and params.get("code_challenge_method", "S256") != "S256":
        return _redirect(
            redirect_uri,
            {"error": "invalid_request", "error_description": "invalid code challenge method"},
            params,
        )
    if challenge is None and app.require_pkce:
        return _redirect(
            redirect_uri,
            {"error": "invalid_request", "error_description": "missing required code challenge"},
            params,
        )
    scope = params.get("scope") or " ".join(app.scopes)
    if request.method == "GET":
        return _login_page(state, app, params, scope, error="")
    if params.get("decision") == "deny":
        return _redirect(
            redirect_uri,
            {"error": "access_denied", "error_description": "end-user denied authorization"},
            params,
        )
    user = _user_by_username(state, params.get("username", ""))
    if (
        user is None
        or not user["IsActive"]
        or state.auth.passwords.get(user["Id"]) != params.get("pw")
    ):
        return _login_page(
            state,
            app,
            params,
            scope,
            error=(
                "Please check your username and password. If you still can't log in, contact "
                "your Salesforce administrator."
            ),
        )
    code = state.auth.new_code(app, user["Id"], redirect_uri, challenge, scope)
    return _redirect(redirect_uri, {"code": code}, params)


def _login_page(
    state: SfState, app: ConnectedApp, params: dict[str, str], scope: str, error: str
) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _AUTHORIZE_FIELDS
        if name in params
    )
    return HTMLResponse(
        _LOGIN_PAGE.format(
            org=html.escape(state.org.name),
            app=html.escape(app.name),
            scope=html.escape(scope),
            hidden=hidden,
            error=f'<p role="alert">{html.escape(error)}</p>' if error else "",
        ),
        status_code=200,
    )


def _redirect(redirect_uri: str, values: dict[str, str], params: dict[str, str]) -> Response:
    if params.get("state"):
        values = {**values, "state": params["state"]}
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(values)}", status_code=302)


async def identity(request: Request) -> Response:
    """The identity URL (``id`` of a token answer): who the session's user is."""
    from sfsim.rest.auth import require_session

    state = sf_state(request)
    caller = require_session(request, count=False)
    found = state.records.find(caller.user_id)
    assert found is not None
    user = found[1]
    org_id = str(request.path_params.get("org_id", state.org.id))
    user_id = str(request.path_params.get("user_id", user["Id"]))
    if org_id != state.org.id or user_id != user["Id"]:
        raise oerr.InvalidToken("Bad_Id")
    return JSONResponse(
        {
            "id": f"https://{state.org.login_host}/id/{state.org.id}/{user['Id']}",
            "organization_id": state.org.id,
            "user_id": user["Id"],
            "username": user["Username"],
            "display_name": user["Name"],
            "email": user["Email"],
            "active": user["IsActive"],
            "is_app_installed": True,
            "urls": {
                "rest": f"{state.base_url}/services/data/v{{version}}/",
                "sobjects": f"{state.base_url}/services/data/v{{version}}/sobjects/",
                "query": f"{state.base_url}/services/data/v{{version}}/query/",
            },
        }
    )


async def userinfo(request: Request) -> Response:
    """OpenID Connect userinfo for the session's user."""
    from sfsim.rest.auth import require_session

    state = sf_state(request)
    caller = require_session(request, count=False)
    found = state.records.find(caller.user_id)
    assert found is not None
    user = found[1]
    return JSONResponse(
        {
            "sub": f"https://{state.org.login_host}/id/{state.org.id}/{user['Id']}",
            "user_id": user["Id"],
            "organization_id": state.org.id,
            "preferred_username": user["Username"],
            "name": user["Name"],
            "email": user["Email"],
            "active": user["IsActive"],
        }
    )
