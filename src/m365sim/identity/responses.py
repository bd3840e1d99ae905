"""Entra ID routes: parse the request, ask ``IdentityBackend`` (tokens) or ``SignInFlow``
(sign-in pages), serialise the answer.

JSON endpoints (discovery, keys, token) answer errors in Entra's JSON shape through the
app's ``SimError`` handler. Sign-in pages answer errors as an HTML page, or, once the
redirect URI is trusted, by redirecting back to the app with ``error`` parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from m365sim.http import JSONResponse, request_id, sim_state, tag_request
from m365sim.identity import exceptions as errors
from m365sim.identity.models import IdentityBackend, basic_credentials, identity_backend
from m365sim.identity.sign_in import (
    AskConsent,
    BrowserSession,
    EnterPassword,
    NeedAdminApproval,
    PickAccount,
    RedirectToApp,
    ShowError,
    SignInFlow,
    Step,
    sign_in_flow,
)

SESSION_COOKIE = "m365sim_session"
NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _backend(request: Request) -> IdentityBackend:
    return identity_backend(sim_state(request))


def _flow(request: Request) -> SignInFlow:
    return sign_in_flow(sim_state(request))


def origin(request: Request) -> str:
    """The origin the client used (``https://localhost:PORT`` or ``https://127.0.0.1:PORT``)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def _tenant(request: Request) -> str:
    return str(request.path_params["tenant"])


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


# -- discovery --------------------------------------------------------------------------------
async def openid_configuration(request: Request) -> Response:
    """OpenID Connect discovery for a tenant id, verified domain, `organizations` or `common`."""
    document = _backend(request).openid_configuration(origin(request), _tenant(request))
    return JSONResponse(document)


async def keys(request: Request) -> Response:
    """The JSON Web Key Set that verifies every token m365sim issues."""
    return JSONResponse(_backend(request).jwks(origin(request), _tenant(request)))


async def instance_discovery(request: Request) -> Response:
    """MSAL's instance validation, answered for this host (``instance_discovery=`` may
    point here)."""
    here = origin(request)
    host = here.split("://", 1)[1]
    endpoint = request.query_params.get(
        "authorization_endpoint", f"{here}/common/oauth2/v2.0/authorize"
    )
    tenant = (
        endpoint.split("://", 1)[-1].split("/")[1]
        if "/" in endpoint.split("://", 1)[-1]
        else "common"
    )
    return JSONResponse(
        {
            "tenant_discovery_endpoint": f"{here}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )


async def user_realm(request: Request) -> Response:
    """User realm discovery, which MSAL asks before a password grant: known domains are
    "Managed" (cloud passwords), others "Unknown"."""
    username = str(request.path_params["username"])
    domain = username.rpartition("@")[2]
    tenant = sim_state(request).find_tenant(domain) if domain else None
    return JSONResponse(
        {
            "ver": "1.0",
            "account_type": "Managed" if tenant else "Unknown",
            "domain_name": domain,
            "cloud_instance_name": origin(request).split("://", 1)[1],
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
    )


async def userinfo(request: Request) -> Response:
    """The signed-in user's OpenID claims, for a delegated Graph token."""
    from m365sim.graph.auth import authenticate

    caller = authenticate(request)
    if caller.user is None:
        from m365sim.graph.exceptions import InvalidAuthenticationToken

        raise InvalidAuthenticationToken("The userinfo endpoint needs a delegated (user) token.")
    user = caller.user
    claims: dict[str, Any] = {
        "sub": user.id,
        "name": user.display_name,
        "picture": f"{origin(request)}/v1.0/me/photo/$value",
    }
    if user.given_name:
        claims["given_name"] = user.given_name
    if user.surname:
        claims["family_name"] = user.surname
    if user.mail:
        claims["email"] = user.mail
    return JSONResponse(claims)


# -- token endpoint ---------------------------------------------------------------------------
async def token(request: Request) -> Response:
    """Token endpoint: client credentials, authorization code (PKCE), refresh token, password."""
    backend = _backend(request)
    tenant_key = _tenant(request)
    tenant = backend.check_tenant_key(tenant_key)
    form = await _form(request)
    grant_type = form.get("grant_type", "")
    if not grant_type:
        raise errors.MissingParameter()
    basic = basic_credentials(request.headers.get("authorization", ""))
    client_id = form.get("client_id") or (basic[0] if basic else "")
    app_tenant, app = backend.find_app(tenant_key, tenant, client_id)
    tag_request(request, tenant_id=app_tenant.id, app_id=app.app_id)
    origins = {origin(request), sim_state(request).base_url}
    acr = backend.authenticate_client(
        app,
        form,
        basic[1] if basic else None,
        backend.token_endpoints(origins, tenant_key, app_tenant),
    )
    here = origin(request)
    if grant_type == "client_credentials":
        issued = backend.client_credentials(app_tenant, app, form.get("scope", ""), acr)
    elif grant_type == "authorization_code":
        issued = backend.redeem_code(app_tenant, app, form, acr, here)
    elif grant_type == "refresh_token":
        issued = backend.redeem_refresh_token(app_tenant, app, form, acr, here)
    elif grant_type == "password":
        issued = backend.password_grant(app_tenant, app, form, acr, here)
    else:
        raise errors.UnsupportedGrantType(
            f"The app requested an unsupported grant type '{grant_type}'."
        )
    tag_request(request, user_id=issued.user_id)
    return JSONResponse(issued.body, headers=NO_STORE)


# -- sign-in pages ----------------------------------------------------------------------------
def _session(request: Request, flow: SignInFlow) -> BrowserSession:
    return flow.session(request.cookies.get(SESSION_COOKIE))


def render(request: Request, step: Step, session: BrowserSession | None = None) -> Response:
    """Turn the sign-in flow's next step into a page or a redirect (and keep the session cookie)."""
    response: Response
    if isinstance(step, RedirectToApp):
        if step.response_mode == "form_post":
            response = _page(
                "signin_form_post.html",
                200,
                title="Working...",
                action=step.redirect_uri,
                params=step.params,
            )
        else:
            separator = (
                "#"
                if step.response_mode == "fragment"
                else ("&" if "?" in step.redirect_uri else "?")
            )
            response = RedirectResponse(
                f"{step.redirect_uri}{separator}{urlencode(step.params)}", status_code=302
            )
    elif isinstance(step, ShowError):
        response = _error_page(request, step.error)
    elif isinstance(step, EnterPassword):
        response = _page(
            "signin_password.html",
            200,
            title="Sign in",
            request=step.request,
            username=step.username,
            problem=step.problem,
        )
    elif isinstance(step, PickAccount):
        response = _page(
            "signin_pick_account.html",
            200,
            title="Pick an account",
            request=step.request,
            accounts=step.accounts,
        )
    elif isinstance(step, AskConsent):
        response = _page(
            "signin_consent.html",
            200,
            title="Permissions requested",
            request=step.request,
            permissions=step.permissions,
            can_consent_for_organization=step.can_consent_for_organization,
            for_organization_only=step.for_organization_only,
        )
    else:
        assert isinstance(step, NeedAdminApproval)
        response = _page(
            "signin_admin_approval.html",
            200,
            title="Need admin approval",
            request=step.request,
            permissions=step.permissions,
            message=step.error.redirect_description,
        )
    response.headers.update(NO_STORE)
    if session is not None:
        response.set_cookie(
            SESSION_COOKIE, session.id, path="/", secure=True, httponly=True, samesite="lax"
        )
    return response


def _page(template: str, status: int, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status)


def _error_page(request: Request, error: errors.EntraError) -> HTMLResponse:
    return _page(
        "signin_error.html",
        error.status if error.status >= 400 else 400,
        title="Sign in error",
        message=error.redirect_description,
        request_id=request_id(request),
        correlation_id=request.headers.get("client-request-id") or request_id(request),
        timestamp=f"{sim_state(request).now():%Y-%m-%dT%H:%M:%SZ}",
    )


async def authorize(request: Request) -> Response:
    """Start a sign-in: account picker, password page, consent, then the redirect with a code."""
    flow = _flow(request)
    session = _session(request, flow)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(await _form(request))
    try:
        step = flow.begin_authorize(_tenant(request), params, session)
    except errors.EntraError as error:
        return render(request, ShowError(error), session)
    return render(request, step, session)


async def admin_consent(request: Request) -> Response:
    """Admin consent endpoint: an admin grants the app's permissions for the whole tenant."""
    flow = _flow(request)
    session = _session(request, flow)
    v2 = "/v2.0/" in request.url.path
    try:
        step = flow.begin_admin_consent(
            _tenant(request), dict(request.query_params), session, v2=v2
        )
    except errors.EntraError as error:
        return render(request, ShowError(error), session)
    return render(request, step, session)


async def _page_action(request: Request, act: Any) -> Response:
    flow = _flow(request)
    session = _session(request, flow)
    form = await _form(request)
    try:
        step = act(flow, form, session)
    except errors.EntraError as error:
        return render(request, ShowError(error), session)
    return render(request, step, session)


async def submit_password(request: Request) -> Response:
    """The password page's form."""
    return await _page_action(
        request,
        lambda flow, form, session: flow.submit_password(
            form.get("request", ""), form.get("login", "").strip(), form.get("passwd", ""), session
        ),
    )


async def select_account(request: Request) -> Response:
    """The account picker's form ("Use another account" leads to the password page)."""

    def act(flow: SignInFlow, form: dict[str, str], session: BrowserSession) -> Step:
        if not form.get("account"):
            return flow.use_another_account(form.get("request", ""))
        return flow.select_account(form.get("request", ""), form["account"], session)

    return await _page_action(request, act)


async def submit_consent(request: Request) -> Response:
    """The consent page's Accept / Cancel (with "Consent on behalf of your organization")."""
    return await _page_action(
        request,
        lambda flow, form, session: flow.submit_consent(
            form.get("request", ""),
            accept=form.get("action") == "accept",
            for_organization=form.get("consent_org") in ("1", "on", "true"),
        ),
    )


async def decline_admin_approval(request: Request) -> Response:
    """ "Need admin approval": return to the app with ``error=access_denied``."""
    return await _page_action(
        request,
        lambda flow, form, session: flow.decline_admin_approval(form.get("request", "")),
    )


async def logout(request: Request) -> Response:
    """Sign out of every account in this browser; redirect to ``post_logout_redirect_uri``."""
    _flow(request).sign_out(request.cookies.get(SESSION_COOKIE))
    target = request.query_params.get("post_logout_redirect_uri")
    response: Response
    if target:
        response = RedirectResponse(target, status_code=302)
    else:
        response = _page("signin_signed_out.html", 200, title="Signed out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
