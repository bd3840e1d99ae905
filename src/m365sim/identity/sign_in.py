"""The interactive sign-in: Entra's pages, from the authorize request to the redirect back.

``SignInFlow`` is a state machine over one ``IdentityBackend``. An authorize or admin-consent
request becomes a ``SignInRequest`` waiting for the person at the browser; each answer (an
account picked, a password typed, consent given or refused) returns the next ``Step``: a
page to show (``PickAccount``, ``EnterPassword``, ``AskConsent``, ``NeedAdminApproval``,
``ShowError``) or the redirect back to the app (``RedirectToApp``) with a code from the
backend or an error. ``BrowserSession`` is who is signed in in one browser (by cookie).
One flow per ``SimState`` (``sign_in_flow(state)``); ``state.reset()`` drops it.

Where m365sim differs from Microsoft Entra ID: the pages are m365sim's own (a password
form, an account picker, a consent page), with no "Stay signed in?", MFA or Conditional
Access step; only the authorization code flow (``response_type=code``) is served.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from m365sim.directory.models import AppRegistration, Tenant, User
from m365sim.identity import exceptions as errors
from m365sim.identity import tokens
from m365sim.identity.models import (
    MULTI_TENANT_KEYS,
    IdentityBackend,
    grant_delegated,
    identity_backend,
)
from m365sim.identity.permissions import (
    OIDC_SCOPES,
    Permission,
    RequestedScopes,
    describe_application,
    describe_delegated,
)
from m365sim.state import SimState


# -- what the flow remembers between pages ----------------------------------------------------
@dataclass
class BrowserSession:
    """The accounts signed in in one browser (the ``m365sim.session`` cookie)."""

    id: str
    # (tenant id, user id) → when the password was typed; most recent first
    accounts: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def remember(self, tenant: Tenant, user: User, at: datetime) -> None:
        self.accounts.pop((tenant.id, user.id), None)
        self.accounts = {(tenant.id, user.id): at, **self.accounts}


@dataclass
class SignInRequest:
    """An authorize or admin-consent request waiting for the person at the browser."""

    id: str
    kind: Literal["authorize", "adminconsent"]
    tenant_key: str
    app: AppRegistration
    app_tenant: Tenant
    redirect_uri: str
    state: str | None
    scope: str = ""
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    prompt: str | None = None
    login_hint: str | None = None
    response_mode: str = "query"
    v2_admin_consent: bool = False
    user: User | None = None
    user_tenant: Tenant | None = None


# -- what the pages show next -----------------------------------------------------------------
@dataclass(frozen=True)
class Account:
    tenant_id: str
    user_id: str
    user_principal_name: str
    display_name: str


@dataclass(frozen=True)
class PickAccount:
    request: SignInRequest
    accounts: list[Account]


@dataclass(frozen=True)
class EnterPassword:
    request: SignInRequest
    username: str = ""
    problem: str | None = None  # what went wrong with the last attempt


@dataclass(frozen=True)
class AskConsent:
    request: SignInRequest
    permissions: list[Permission]
    can_consent_for_organization: bool
    for_organization_only: bool  # the admin consent endpoints


@dataclass(frozen=True)
class NeedAdminApproval:
    request: SignInRequest
    permissions: list[Permission]
    error: errors.EntraError


@dataclass(frozen=True)
class ShowError:
    """An error Entra shows on its own page, because the redirect URI can't be trusted."""

    error: errors.EntraError


@dataclass(frozen=True)
class RedirectToApp:
    redirect_uri: str
    params: dict[str, str]
    response_mode: str = "query"


Step = PickAccount | EnterPassword | AskConsent | NeedAdminApproval | ShowError | RedirectToApp


class SignInFlow:
    """Entra ID's sign-in and consent pages over one ``IdentityBackend``."""

    def __init__(self, backend: IdentityBackend) -> None:
        self.backend = backend
        self.state = backend.state
        self.sessions: dict[str, BrowserSession] = {}
        self.sign_in_requests: dict[str, SignInRequest] = {}

    # -- browser sessions --------------------------------------------------------------------
    def session(self, session_id: str | None) -> BrowserSession:
        if session_id and session_id in self.sessions:
            return self.sessions[session_id]
        created = BrowserSession(id=secrets.token_urlsafe(24))
        self.sessions[created.id] = created
        return created

    def sign_out(self, session_id: str | None) -> None:
        if session_id:
            self.sessions.pop(session_id, None)

    def _accounts(
        self, session: BrowserSession, request: SignInRequest
    ) -> list[tuple[Tenant, User]]:
        """The browser's accounts this request may use: signed in to the request's tenant,
        still enabled, and not signed out by a session revocation since."""
        found: list[tuple[Tenant, User]] = []
        for (tenant_id, user_id), signed_in_at in session.accounts.items():
            tenant = self.state.tenants.get(tenant_id)
            user = tenant.users.get(user_id) if tenant else None
            if tenant is None or user is None or not user.account_enabled:
                continue
            if user.sessions_revoked_at is not None and signed_in_at < user.sessions_revoked_at:
                continue
            if (
                request.tenant_key.lower() not in MULTI_TENANT_KEYS
                and tenant.id != request.app_tenant.id
            ):
                continue
            found.append((tenant, user))
        return found

    # -- authorize and admin consent ----------------------------------------------------------
    def _app_and_redirect_uri(
        self, tenant_key: str, params: Mapping[str, str]
    ) -> tuple[Tenant, AppRegistration, str]:
        """The app a sign-in request names, its home tenant, and the registered redirect URI
        to answer on (the app's first when the request names none). Errors here are raised,
        not redirected: the redirect URI is not trusted yet."""
        tenant = self.backend.check_tenant_key(tenant_key)
        app_tenant, app = self.backend.find_app(tenant_key, tenant, params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri") or (
            app.redirect_uris[0] if app.redirect_uris else ""
        )
        self.backend.check_redirect_uri(app, redirect_uri)
        return app_tenant, app, redirect_uri

    def begin_authorize(
        self, tenant_key: str, params: Mapping[str, str], session: BrowserSession
    ) -> Step:
        """Validate an authorize request, then decide the first page (or answer at once)."""
        app_tenant, app, redirect_uri = self._app_and_redirect_uri(tenant_key, params)
        request = SignInRequest(
            id=secrets.token_urlsafe(18),
            kind="authorize",
            tenant_key=tenant_key,
            app=app,
            app_tenant=app_tenant,
            redirect_uri=redirect_uri,
            state=params.get("state"),
            scope=params.get("scope", ""),
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method", "plain"),
            prompt=(params.get("prompt") or None),
            login_hint=params.get("login_hint") or None,
            response_mode=params.get("response_mode") or "query",
        )
        if params.get("response_type", "") != "code":
            return self._error_redirect(
                request,
                errors.UnsupportedResponseType(
                    "The provided value for the input parameter 'response_type' is not allowed "
                    "for this request. Expected value: 'code'. m365sim serves the authorization "
                    "code flow only."
                ),
            )
        if request.code_challenge is not None and request.code_challenge_method not in (
            "S256",
            "plain",
        ):
            return self._error_redirect(
                request,
                errors.MissingParameter(
                    "The code_challenge_method parameter must be 'S256' or 'plain'."
                ),
            )
        try:
            self.backend.parse_scope(app_tenant, app, request.scope)
        except errors.EntraError as error:
            return self._error_redirect(request, error)
        self.sign_in_requests[request.id] = request
        return self._choose_account(request, session)

    def begin_admin_consent(
        self, tenant_key: str, params: Mapping[str, str], session: BrowserSession, *, v2: bool
    ) -> Step:
        app_tenant, app, redirect_uri = self._app_and_redirect_uri(tenant_key, params)
        request = SignInRequest(
            id=secrets.token_urlsafe(18),
            kind="adminconsent",
            tenant_key=tenant_key,
            app=app,
            app_tenant=app_tenant,
            redirect_uri=redirect_uri,
            state=params.get("state"),
            scope=params.get("scope", "https://graph.microsoft.com/.default" if v2 else ""),
            prompt="select_account",
            v2_admin_consent=v2,
        )
        self.sign_in_requests[request.id] = request
        return self._choose_account(request, session)

    def pending(self, request_id: str) -> SignInRequest:
        request = self.sign_in_requests.get(request_id)
        if request is None:
            raise errors.MissingParameter(
                "This sign-in page has expired or was already used. Start again from the "
                "application."
            )
        return request

    def _choose_account(self, request: SignInRequest, session: BrowserSession) -> Step:
        accounts = self._accounts(session, request)
        prompt = request.prompt
        if prompt == "login" or (not accounts and prompt != "none"):
            return EnterPassword(request, username=request.login_hint or "")
        if prompt == "select_account":
            return self._picker(request, accounts)
        hinted = [
            a
            for a in accounts
            if request.login_hint and a[1].user_principal_name.lower() == request.login_hint.lower()
        ]
        if hinted:
            return self._signed_in(request, session, *hinted[0])
        if prompt == "none":
            if not accounts:
                return self._error_redirect(request, errors.LoginRequired())
            if len(accounts) > 1:
                return self._error_redirect(request, errors.InteractionRequired())
        if len(accounts) == 1:
            return self._signed_in(request, session, *accounts[0])
        return self._picker(request, accounts)

    @staticmethod
    def _picker(request: SignInRequest, accounts: list[tuple[Tenant, User]]) -> Step:
        return PickAccount(
            request,
            [Account(t.id, u.id, u.user_principal_name, u.display_name) for t, u in accounts],
        )

    def select_account(self, request_id: str, account: str, session: BrowserSession) -> Step:
        request = self.pending(request_id)
        for tenant, user in self._accounts(session, request):
            if f"{tenant.id}:{user.id}" == account:
                return self._signed_in(request, session, tenant, user)
        return EnterPassword(request)

    def use_another_account(self, request_id: str) -> Step:
        return EnterPassword(self.pending(request_id))

    def submit_password(
        self, request_id: str, username: str, password: str, session: BrowserSession
    ) -> Step:
        request = self.pending(request_id)
        if request.tenant_key.lower() in MULTI_TENANT_KEYS:
            found = self.state.find_user_anywhere(username)
            tenant, user = found if found else (None, None)
        else:
            tenant, user = request.app_tenant, request.app_tenant.find_user(username)
            if user is None and self.state.find_user_anywhere(username) is not None:
                return ShowError(
                    errors.AccountNotInTenant(
                        f"User account '{username}' from identity provider does not exist in "
                        "tenant "
                        f"'{request.app_tenant.display_name}' and cannot access the application "
                        f"'{request.app.app_id}'({request.app.display_name}) in that tenant. The "
                        "account needs to be added as an external user in the tenant first. Sign "
                        "out and sign in again with a different Azure Active Directory user "
                        "account."
                    )
                )
        if tenant is None or user is None:
            return EnterPassword(
                request,
                username,
                "AADSTS50034: This username may be incorrect. Make sure you typed it correctly.",
            )
        if not secrets.compare_digest(user.password.encode(), password.encode()):
            return EnterPassword(
                request, username, "AADSTS50126: Your account or password is incorrect."
            )
        if not user.account_enabled:
            return EnterPassword(
                request,
                username,
                "AADSTS50057: The user account is disabled. Contact your administrator.",
            )
        session.remember(tenant, user, self.state.now())
        return self._signed_in(request, session, tenant, user)

    def _signed_in(
        self, request: SignInRequest, session: BrowserSession, tenant: Tenant, user: User
    ) -> Step:
        """The person is known; next is consent (if needed) or the answer."""
        request.user, request.user_tenant = user, tenant
        if tenant.id != request.app_tenant.id:
            return ShowError(errors.AppNotFound(
                f"Application with identifier '{request.app.app_id}' was not found in the "
                f"directory '{tenant.display_name}'. This can happen if the application has not "
                "been installed by "
                "the administrator of the tenant or consented to by any user in the tenant."
            ))  # fmt: skip
        if request.kind == "adminconsent":
            permissions = self._admin_consent_permissions(request)
            if not user.is_admin:
                return NeedAdminApproval(request, permissions, self._admin_required_error(request))
            return AskConsent(
                request, permissions, can_consent_for_organization=True, for_organization_only=True
            )
        requested = RequestedScopes.parse(request.scope)
        _, missing = self.backend.delegated_scopes(tenant, request.app, user, requested)
        if request.prompt == "none" and missing:
            return self._error_redirect(
                request,
                errors.ConsentRequired(
                    f"The user or administrator has not consented to use the application with ID "
                    f"'{request.app.app_id}' named '{request.app.display_name}'. Send an "
                    "interactive authorization request for this user and resource."
                ),
                code="consent_required",
            )
        if missing or request.prompt == "consent":
            shown = missing or requested.wanted(request.app.delegated_permissions)
            permissions = [
                describe_delegated(s) for s in sorted(requested.oidc - {"offline_access"})
            ]
            permissions += [describe_delegated(s) for s in sorted(shown)]
            if "offline_access" in requested.oidc:
                permissions.append(describe_delegated("offline_access"))
            if self.backend.needs_admin(tenant, missing) and not user.is_admin:
                return NeedAdminApproval(request, permissions, self._admin_required_error(request))
            return AskConsent(
                request,
                permissions,
                can_consent_for_organization=user.is_admin,
                for_organization_only=False,
            )
        return self._issue_code(request)

    def _admin_required_error(self, request: SignInRequest) -> errors.EntraError:
        return errors.AdminConsentRequired(
            f"Admin consent is required for the permissions requested by the application "
            f"'{request.app.display_name}'. An administrator of {request.app_tenant.display_name} "
            "must grant it, on this page or in the Azure portal (Enterprise applications → "
            "Permissions → Grant admin consent)."
        )

    def _admin_consent_permissions(self, request: SignInRequest) -> list[Permission]:
        application, delegated = self._admin_consent_selection(request)
        return [describe_application(p) for p in sorted(application)] + [
            describe_delegated(p) for p in sorted(delegated)
        ]

    def _admin_consent_selection(self, request: SignInRequest) -> tuple[set[str], set[str]]:
        app = request.app
        requested = RequestedScopes.parse(request.scope)
        if not request.v2_admin_consent or requested.default or not requested.graph:
            return set(app.application_permissions), set(app.delegated_permissions)
        return (
            requested.graph & app.application_permissions,
            (requested.graph - app.application_permissions) | requested.oidc,
        )

    def submit_consent(self, request_id: str, *, accept: bool, for_organization: bool) -> Step:
        request = self.pending(request_id)
        if request.user is None or request.user_tenant is None:
            return EnterPassword(request)
        if not accept:
            self.sign_in_requests.pop(request.id, None)
            return self._error_redirect(request, errors.UserDeclinedConsent(), subcode="cancel")
        tenant, user, app = request.user_tenant, request.user, request.app
        principal = self.backend.principal(tenant, app)
        if request.kind == "adminconsent":
            if not user.is_admin:
                return NeedAdminApproval(
                    request,
                    self._admin_consent_permissions(request),
                    self._admin_required_error(request),
                )
            application, delegated = self._admin_consent_selection(request)
            principal.granted_application_permissions |= application
            if delegated:
                grant_delegated(principal, delegated, None)
            self.sign_in_requests.pop(request.id, None)
            params = {"admin_consent": "True", "tenant": tenant.id}
            if request.v2_admin_consent:
                params["scope"] = " ".join(
                    f"https://graph.microsoft.com/{p}" for p in sorted(application)
                )
            if request.state is not None:
                params["state"] = request.state
            return RedirectToApp(request.redirect_uri, params)
        requested = RequestedScopes.parse(request.scope)
        scopes = requested.wanted(app.delegated_permissions) | requested.oidc
        if self.backend.needs_admin(tenant, scopes - OIDC_SCOPES) and not user.is_admin:
            return NeedAdminApproval(
                request,
                [describe_delegated(s) for s in sorted(scopes)],
                self._admin_required_error(request),
            )
        grant_delegated(
            principal, scopes, None if (for_organization and user.is_admin) else user.id
        )
        return self._issue_code(request)

    def decline_admin_approval(self, request_id: str) -> Step:
        request = self.pending(request_id)
        self.sign_in_requests.pop(request.id, None)
        return self._error_redirect(
            request, self._admin_required_error(request), code="access_denied", subcode="cancel"
        )

    def _issue_code(self, request: SignInRequest) -> Step:
        assert request.user is not None and request.user_tenant is not None
        value = self.backend.issue_code(
            request.user_tenant,
            request.app,
            request.user,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
        )
        self.sign_in_requests.pop(request.id, None)
        params = {"code": value}
        if request.state is not None:
            params["state"] = request.state
        params["session_state"] = tokens.b64url(request.user.id.encode())[:36]
        return RedirectToApp(request.redirect_uri, params, request.response_mode)

    def _error_redirect(
        self,
        request: SignInRequest,
        error: errors.EntraError,
        *,
        code: str | None = None,
        subcode: str | None = None,
    ) -> RedirectToApp:
        self.sign_in_requests.pop(request.id, None)
        params = {"error": code or error.code, "error_description": error.redirect_description}
        if subcode:
            params["error_subcode"] = subcode
        if request.state is not None:
            params["state"] = request.state
        return RedirectToApp(request.redirect_uri, params, request.response_mode)


def sign_in_flow(state: SimState) -> SignInFlow:
    """The state's sign-in flow, created on first use (and after each reset)."""
    return state.extension("identity.sign_in", lambda: SignInFlow(identity_backend(state)))
