"""The Entra ID backend: who may get which token.

One ``IdentityBackend`` per ``SimState`` (``identity_backend(state)``); ``state.reset()``
drops it with everything else. It holds what the token service keeps between requests
(authorization codes and refresh tokens) and the rules of the token endpoint: client
authentication, the four grants, consent checks and the claims of what it issues. The
interactive sign-in (browser sessions, the pages a person answers, consent given there) is
``m365sim.identity.sign_in``; directory objects (tenants, users, apps, consent) stay in
``m365sim.directory.models``.

Where m365sim differs from Microsoft Entra ID:

- Only Microsoft Graph is a resource; any other ``{resource}/.default`` is AADSTS500011.
- Apps have a service principal in their home tenant only. Multi-tenant apps
  (``AzureADMultipleOrgs``) may use ``/common`` and ``/organizations``, where the tenant is
  the app's home tenant (token endpoint) or the signed-in user's (authorize).
- A refresh token stays valid after use (as Microsoft's do) until it expires
  (``refresh_token_lifetime_seconds`` after issue, on the simulator's clock) or the user's
  sessions are revoked; each use returns a new one.
- Client assertions may be reused until they expire (MSAL caches them for ten minutes);
  their ``jti`` is not tracked.
- Replication: an app, secret, certificate, service principal or app role assignment
  created through Graph reaches the token service ``Tenant.replication_delay_seconds``
  later (default 0); until then the token endpoint answers as if it didn't exist
  (AADSTS700016, 7000215, 700027, 7000229; a role is simply missing from ``roles``).
- No Conditional Access, MFA, device code, on-behalf-of, or personal Microsoft accounts.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote_plus

import jwt

from m365sim.directory.models import (
    AppRegistration,
    Certificate,
    DelegatedGrant,
    ServicePrincipal,
    Tenant,
    User,
    is_visible,
)
from m365sim.identity import exceptions as errors
from m365sim.identity import tokens
from m365sim.identity.permissions import (
    ADMIN_ONLY_DELEGATED,
    OIDC_SCOPES,
    RequestedScopes,
)
from m365sim.state import SimState

CODE_LIFETIME = timedelta(minutes=10)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MULTI_TENANT_KEYS = ("common", "organizations")
ClientAuthentication = Literal["0", "1", "2"]  # appidacr: none, secret, certificate


# -- what Entra remembers between requests ---------------------------------------------------
@dataclass
class AuthorizationCode:
    tenant_id: str
    app_id: str
    user_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    issued_at: datetime
    redeemed: bool = False


@dataclass
class RefreshGrant:
    tenant_id: str
    app_id: str
    user_id: str
    nonce: str | None
    issued_at: datetime
    expires_at: datetime


# -- what the token endpoint answers ----------------------------------------------------------
@dataclass(frozen=True)
class IssuedTokens:
    """A token endpoint answer, and the user it was issued for (for the request log)."""

    body: dict[str, Any]
    user_id: str | None = None


class IdentityBackend:
    """Entra ID's token service over one ``SimState``."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}

    # -- tenants, apps --------------------------------------------------------------------
    def find_tenant(self, key: str) -> Tenant:
        tenant = self.state.find_tenant(key)
        if tenant is None:
            raise errors.TenantNotFound(
                f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant."
            )
        return tenant

    def check_tenant_key(self, key: str) -> Tenant | None:
        """The tenant a path names, or None for ``common`` / ``organizations``."""
        if key.lower() in MULTI_TENANT_KEYS:
            return None
        return self.find_tenant(key)

    def find_app(
        self, tenant_key: str, tenant: Tenant | None, client_id: str
    ) -> tuple[Tenant, AppRegistration]:
        """The app registration ``client_id`` as the tenant in the path sees it."""
        if not client_id:
            raise errors.MissingParameter(
                "The request body must contain the following parameter: 'client_id'."
            )
        if tenant is None:
            now = self.state.now()
            for candidate in self.state.tenants.values():
                app = candidate.apps.get(client_id)
                if app is not None and is_visible(app.visible_at, now):
                    if app.sign_in_audience == "AzureADMyOrg":
                        raise errors.SingleTenantAppOnCommon(
                            f"Application '{app.app_id}'({app.display_name}) is not configured "
                            "as a multi-tenant application. Usage of the /common endpoint is not "
                            "supported for such applications created after '10/15/2018'. Use a "
                            "tenant-specific endpoint or configure the application to be "
                            "multi-tenant."
                        )
                    return candidate, self._enabled(app)
            raise errors.AppNotFound(
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant_key}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant."
            )
        registered = tenant.apps.get(client_id)
        if registered is None or not is_visible(registered.visible_at, self.state.now()):
            raise errors.AppNotFound(
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.display_name}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You may have sent your authentication request to the wrong tenant."
            )
        return tenant, self._enabled(registered)

    @staticmethod
    def _enabled(app: AppRegistration) -> AppRegistration:
        if app.disabled:
            raise errors.AppDisabled(f"Application '{app.app_id}'({app.display_name}) is disabled.")
        return app

    @staticmethod
    def principal(tenant: Tenant, app: AppRegistration) -> ServicePrincipal:
        return tenant.service_principals.setdefault(app.app_id, ServicePrincipal(app_id=app.app_id))

    # -- discovery ------------------------------------------------------------------------
    def issuer(self, origin: str, tenant: Tenant | None) -> str:
        return f"{origin}/{tenant.id if tenant else '{tenantid}'}/v2.0"

    def openid_configuration(self, origin: str, tenant_key: str) -> dict[str, Any]:
        tenant = self.check_tenant_key(tenant_key)
        path = tenant.id if tenant else tenant_key.lower()
        base = f"{origin}/{path}"
        host = origin.split("://", 1)[-1]
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer(origin, tenant),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{origin}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "NA" if tenant else None,
            "cloud_instance_name": host,
            "cloud_graph_host_name": host,
            "msgraph_host": host,
            "rbac_url": f"{origin}/rbac",
        }

    def token_endpoints(self, origins: set[str], tenant_key: str, tenant: Tenant) -> set[str]:
        """Every address of this tenant's token endpoint: what a client assertion's ``aud``
        may name (v2.0 and v1.0 paths; tenant id, any verified domain, or the path used)."""
        keys = {tenant_key, tenant.id, *tenant.domains}
        return {
            f"{origin}/{key}/{path}"
            for origin in origins
            for key in keys
            for path in ("oauth2/v2.0/token", "oauth2/token")
        }

    def jwks(self, origin: str, tenant_key: str) -> dict[str, Any]:
        tenant = self.check_tenant_key(tenant_key)
        return tokens.jwks(self.state, self.issuer(origin, tenant))

    # -- client authentication -------------------------------------------------------------
    def authenticate_client(
        self,
        app: AppRegistration,
        form: Mapping[str, str],
        basic_secret: str | None,
        token_endpoints: set[str],
    ) -> ClientAuthentication:
        """Check the secret or certificate assertion; returns the ``appidacr`` it earns."""
        secret = form.get("client_secret") or basic_secret
        assertion = form.get("client_assertion")
        if assertion:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise errors.MissingParameter(
                    f"The request body must contain the following parameter: "
                    f"'client_assertion_type' with the value '{ASSERTION_TYPE}'."
                )
            self._check_assertion(app, assertion, token_endpoints)
            return "2"
        if secret is not None:
            self._check_secret(app, secret)
            return "1"
        if app.allow_public_client:
            return "0"
        raise errors.CredentialRequired()

    def _check_secret(self, app: AppRegistration, value: str) -> None:
        now = self.state.now()
        for secret in app.secrets:
            if not is_visible(secret.visible_at, now):
                continue  # not replicated yet: Entra doesn't know this value
            if secrets.compare_digest(secret.value.encode(), value.encode()):
                if secret.is_expired(now):
                    raise errors.ClientSecretExpired(
                        f"The provided client secret keys for app '{app.app_id}' are expired. "
                        "Visit the Azure portal to create new keys for your app: "
                        "https://aka.ms/NewClientSecret, or consider using certificate "
                        "credentials for added security: https://aka.ms/certCreds."
                    )
                return
        raise errors.InvalidClientSecret(
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.app_id}'."
        )

    def _check_assertion(
        self, app: AppRegistration, assertion: str, token_endpoints: set[str]
    ) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise errors.AssertionInvalid(
                "JWT token is invalid or malformed. The client_assertion is not a signed JWT."
            ) from exc
        certificate = self._assertion_certificate(app, header)
        public_key = tokens.public_key_of(certificate.parsed)
        algorithm = str(header.get("alg", ""))
        if public_key is None or algorithm not in ("RS256", "PS256"):
            raise errors.AssertionSignatureInvalid(
                f"Client assertion failed signature validation. The assertion must be signed "
                f"with RS256 or PS256 by the certificate's RSA key (got alg '{algorithm}')."
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key=public_key,
                algorithms=[algorithm],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise errors.AssertionSignatureInvalid(
                "Client assertion failed signature validation. [Reason - The key used to sign "
                f"the assertion does not match the certificate '{certificate.sha1_thumbprint}' "
                f"registered on app '{app.app_id}'.]"
            ) from exc
        except jwt.PyJWTError as exc:
            raise errors.AssertionInvalid(f"JWT token is invalid or malformed. {exc}") from exc
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a.rstrip("/") in token_endpoints for a in audiences):
            raise errors.AssertionInvalid(
                f"JWT token is invalid or malformed. The client assertion's audience "
                f"'{audience}' is not this token endpoint: set 'aud' to "
                f"'{sorted(token_endpoints)[0]}'."
            )
        if claims.get("iss") != app.app_id or claims.get("sub") != app.app_id:
            raise errors.AssertionInvalid(
                "JWT token is invalid or malformed. The client assertion's 'iss' and 'sub' "
                f"claims must both be the client id '{app.app_id}'."
            )
        now = self.state.now().timestamp()
        expires, not_before = claims.get("exp"), claims.get("nbf")
        if (
            not isinstance(expires, int | float)
            or expires < now - 300
            or (isinstance(not_before, int | float) and not_before > now + 300)
        ):
            raise errors.AssertionOutOfTime(
                f"Client assertion is not within its valid time range. Current time: "
                f"{self.state.now():%Y-%m-%dT%H:%M:%S.%fZ}, expiry time of assertion: {expires}."
            )
        if certificate.expires_at < self.state.now():
            raise errors.AssertionSignatureInvalid(
                f"Client assertion failed signature validation. [Reason - The certificate "
                f"'{certificate.sha1_thumbprint}' expired on {certificate.expires_at:%Y-%m-%d}.]"
            )

    def _assertion_certificate(
        self, app: AppRegistration, header: Mapping[str, Any]
    ) -> Certificate:
        # MSAL pads the base64url value with "="; RFC 7515 does not. Entra takes both.
        x5t = str(header.get("x5t") or "").rstrip("=")
        x5t_s256 = str(header.get("x5t#S256") or "").rstrip("=")
        now = self.state.now()
        for certificate in app.certificates:
            if not is_visible(certificate.visible_at, now):
                continue  # not replicated yet: Entra doesn't know this key
            if (x5t_s256 and x5t_s256 == certificate.x5t_s256) or (x5t and x5t == certificate.x5t):
                return certificate
        presented = _thumbprint_hex(x5t_s256 or x5t)
        raise errors.AssertionKeyNotFound(
            "The certificate with identifier used to sign the client assertion is not "
            f"registered on application. [Reason - The key was not found., Thumbprint of key "
            f"used by client: '{presented}', Please visit the Azure Portal, Graph Explorer or "
            f"directly use MS Graph to see configured keys for app Id '{app.app_id}'.]"
        )

    # -- token endpoint --------------------------------------------------------------------
    def client_credentials(
        self, tenant: Tenant, app: AppRegistration, scope: str, acr: ClientAuthentication
    ) -> IssuedTokens:
        requested = self.parse_scope(tenant, app, scope)
        if requested.oidc or requested.graph or not requested.default:
            named = " ".join(requested.raw)
            if len(requested.raw) == 1:
                raise errors.ClientCredentialsScope(
                    f"The provided value for scope {named} is not valid. Client credential flows "
                    "must have a scope value with /.default suffixed to the resource identifier "
                    "(application ID URI)."
                )
            raise errors.InvalidScope(
                "The provided request must include a 'scope' input parameter. The provided value "
                f"for the input parameter 'scope' is not valid. The scope {named} is not valid."
            )
        if acr == "0":
            raise errors.CredentialRequired()
        principal = tenant.service_principals.get(app.app_id)
        if principal is None or not is_visible(principal.visible_at, self.state.now()):
            raise errors.ServicePrincipalMissing(
                f"The client application {app.app_id} is missing service principal in the "
                f"tenant {tenant.id}. See instructions here: "
                "https://go.microsoft.com/fwlink/?linkid=2225119"
            )
        token = tokens.mint_app_token(
            self.state, tenant, app, principal, authenticated_with_certificate=acr == "2"
        )
        lifetime = self.state.config.access_token_lifetime_seconds
        return IssuedTokens(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }
        )

    def issue_code(
        self,
        tenant: Tenant,
        app: AppRegistration,
        user: User,
        *,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str | None,
        code_challenge_method: str,
    ) -> str:
        """A new authorization code for a finished sign-in, for ``redeem_code`` to take."""
        value = tokens.opaque_token("0.A")
        self.codes[value] = AuthorizationCode(
            tenant_id=tenant.id,
            app_id=app.app_id,
            user_id=user.id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            issued_at=self.state.now(),
        )
        return value

    def redeem_code(
        self,
        tenant: Tenant,
        app: AppRegistration,
        form: Mapping[str, str],
        acr: ClientAuthentication,
        origin: str,
    ) -> IssuedTokens:
        value = form.get("code", "")
        redirect_uri = form.get("redirect_uri", "")
        if not value:
            raise errors.MissingParameter(
                "The request body must contain the following parameter: 'code'."
            )
        self.check_redirect_uri(app, redirect_uri)
        code = self.codes.get(value)
        now = self.state.now()
        if code is None or now > code.issued_at + CODE_LIFETIME:
            raise errors.CodeExpired()
        if code.redeemed:
            raise errors.CodeRedeemed()
        if code.app_id != app.app_id or code.tenant_id != tenant.id:
            raise errors.GrantNotForClient(
                "Provided grant is invalid or malformed. The authorization code was issued to a "
                "different client."
            )
        if code.redirect_uri != redirect_uri:
            raise errors.ReplyAddressMismatch(
                f"The reply address '{redirect_uri}' does not match the reply address "
                f"'{code.redirect_uri}' provided when requesting Authorization code."
            )
        if code.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            expected = (
                tokens.pkce_s256(verifier) if code.code_challenge_method == "S256" else verifier
            )
            if not verifier or not secrets.compare_digest(
                expected.encode(), code.code_challenge.encode()
            ):
                raise errors.PkceMismatch()
        code.redeemed = True
        user = self._active_user(tenant, code.user_id, code.issued_at)
        scope = form.get("scope") or code.scope
        return self._user_tokens(tenant, app, user, scope, code.nonce, acr, origin)

    def redeem_refresh_token(
        self,
        tenant: Tenant,
        app: AppRegistration,
        form: Mapping[str, str],
        acr: ClientAuthentication,
        origin: str,
    ) -> IssuedTokens:
        value = form.get("refresh_token", "")
        if not value:
            raise errors.MissingParameter(
                "The request body must contain the following parameter: 'refresh_token'."
            )
        grant = self.refresh_tokens.get(value)
        if grant is None or grant.app_id != app.app_id or grant.tenant_id != tenant.id:
            raise errors.GrantNotForClient()
        now = self.state.now()
        if now >= grant.expires_at:
            inactive = now - grant.issued_at
            raise errors.RefreshTokenExpired(
                f"The refresh token has expired due to inactivity. The token was issued on "
                f"{grant.issued_at:%Y-%m-%dT%H:%M:%S.%f}Z and was inactive for "
                f"{inactive.days}.{_hms(inactive)}."
            )
        user = self._active_user(tenant, grant.user_id, grant.issued_at)
        scope = form.get("scope", "")
        return self._user_tokens(tenant, app, user, scope, grant.nonce, acr, origin)

    def password_grant(
        self,
        tenant: Tenant,
        app: AppRegistration,
        form: Mapping[str, str],
        acr: ClientAuthentication,
        origin: str,
    ) -> IssuedTokens:
        """Resource owner password credentials (ROPC): kept for tests and scripts."""
        username = form.get("username", "")
        user = tenant.find_user(username) if username else None
        if user is None:
            raise errors.UserNotFound(
                f"The user account {{EUII Hidden}} does not exist in the '{tenant.id}' directory. "
                "To sign into this application, the account must be added to the directory."
            )
        if not secrets.compare_digest(user.password.encode(), form.get("password", "").encode()):
            raise errors.InvalidCredentials()
        user = self._active_user(tenant, user.id, None)
        return self._user_tokens(tenant, app, user, form.get("scope", ""), None, acr, origin)

    def _active_user(self, tenant: Tenant, user_id: str, grant_issued_at: datetime | None) -> User:
        user = tenant.users.get(user_id)
        if user is None:
            raise errors.UserNotFound()
        if not user.account_enabled:
            raise errors.UserDisabled()
        revoked = user.sessions_revoked_at
        if grant_issued_at is not None and revoked is not None and grant_issued_at < revoked:
            raise errors.GrantRevoked(
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password. The grant was "
                f"issued on '{grant_issued_at:%Y-%m-%dT%H:%M:%S.%f}Z' and the TokensValidFrom "
                f"date (before which tokens are not valid) for this user is "
                f"'{revoked:%Y-%m-%dT%H:%M:%S}Z'."
            )
        return user

    def parse_scope(self, tenant: Tenant, app: AppRegistration, scope: str) -> RequestedScopes:
        if not scope.strip():
            raise errors.MissingParameter(
                "The request body must contain the following parameter: 'scope'."
            )
        requested = RequestedScopes.parse(scope)
        if requested.unknown_resources:
            resource = requested.unknown_resources[0]
            raise errors.ResourceNotFound(
                f"The resource principal named {resource} was not found in the tenant named "
                f"{tenant.display_name}. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You might have sent your authentication request to the wrong tenant."
            )
        if requested.malformed:
            raise errors.InvalidScope(
                "The provided request must include a 'scope' input parameter. The provided value "
                f"for the input parameter 'scope' is not valid. The scope "
                f"{' '.join(requested.raw)} is not valid."
            )
        return requested

    def delegated_scopes(
        self, tenant: Tenant, app: AppRegistration, user: User, requested: RequestedScopes
    ) -> tuple[set[str], set[str]]:
        """(granted Graph scopes, requested ones not yet consented)."""
        granted = self.principal(tenant, app).delegated_scopes_for(user.id) - OIDC_SCOPES
        missing = requested.wanted(app.delegated_permissions) - granted
        return granted, missing

    def needs_admin(self, tenant: Tenant, scopes: set[str]) -> bool:
        return bool(scopes & ADMIN_ONLY_DELEGATED) or (
            bool(scopes) and not tenant.user_consent_allowed
        )

    def _user_tokens(
        self,
        tenant: Tenant,
        app: AppRegistration,
        user: User,
        scope: str,
        nonce: str | None,
        acr: ClientAuthentication,
        origin: str,
    ) -> IssuedTokens:
        requested = self.parse_scope(tenant, app, scope)
        granted, missing = self.delegated_scopes(tenant, app, user, requested)
        if missing:
            if self.needs_admin(tenant, missing):
                raise errors.AdminConsentRequired()
            raise errors.ConsentRequired(
                f"The user or administrator has not consented to use the application with ID "
                f"'{app.app_id}' named '{app.display_name}'. Send an interactive authorization "
                "request for this user and resource."
            )
        scp = granted | (requested.oidc - {"offline_access"})
        echoed = [
            s
            for s in requested.raw
            if s.lower() in OIDC_SCOPES or _short(s) in granted or s.endswith("/.default")
        ]
        if requested.default:
            echoed += [f"https://graph.microsoft.com/{s}" for s in sorted(granted)]
        lifetime = self.state.config.access_token_lifetime_seconds
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(dict.fromkeys(echoed)),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": tokens.mint_user_token(
                self.state, tenant, app, user, scp, client_authenticated=acr
            ),
        }
        if "offline_access" in requested.oidc:
            now = self.state.now()
            refresh_token = tokens.opaque_token("1.A")
            self.refresh_tokens[refresh_token] = RefreshGrant(
                tenant_id=tenant.id,
                app_id=app.app_id,
                user_id=user.id,
                nonce=nonce,
                issued_at=now,
                expires_at=now
                + timedelta(seconds=self.state.config.refresh_token_lifetime_seconds),
            )
            response["refresh_token"] = refresh_token
        if "openid" in requested.oidc:
            response["id_token"] = tokens.mint_id_token(
                self.state,
                tenant,
                app,
                user,
                issuer=self.issuer(origin, tenant),
                nonce=nonce,
                include_email="email" in requested.oidc,
            )
        response["client_info"] = tokens.client_info(tenant, user)
        return IssuedTokens(response, user.id)

    @staticmethod
    def check_redirect_uri(app: AppRegistration, redirect_uri: str) -> None:
        """Refuse a redirect URI the app did not register (AADSTS50011)."""
        if redirect_uri not in app.redirect_uris:
            raise errors.RedirectUriMismatch(
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{app.app_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more "
                "about how to fix this."
            )


def grant_delegated(principal: ServicePrincipal, scopes: set[str], user_id: str | None) -> None:
    """Add ``scopes`` to the user's (or, with None, the organization's) delegated grant."""
    for grant in principal.delegated_grants:
        if grant.user_id == user_id:
            grant.scopes |= scopes
            return
    principal.delegated_grants.append(DelegatedGrant(scopes=set(scopes), user_id=user_id))


def revoke_delegated(
    principal: ServicePrincipal, scopes: set[str] | None, user_id: str | None
) -> None:
    """Remove ``scopes`` (all, with None) from the user's (or organization's) grant."""
    for grant in list(principal.delegated_grants):
        if grant.user_id == user_id:
            grant.scopes -= grant.scopes if scopes is None else scopes
            if not grant.scopes:
                principal.delegated_grants.remove(grant)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``client_secret_basic``: (client id, secret) from an ``Authorization: Basic`` header."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if colon else None


def _short(scope: str) -> str:
    return scope.rpartition("/")[2]


def _hms(delta: timedelta) -> str:
    seconds = delta.seconds
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _thumbprint_hex(b64: str) -> str:
    try:
        return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex().upper()
    except (binascii.Error, ValueError):
        return b64


def identity_backend(state: SimState) -> IdentityBackend:
    """The state's identity backend, created on first use (and after each reset)."""
    return state.extension("identity", lambda: IdentityBackend(state))
