"""Salesforce OAuth 2.0, as m365sync needs it.

Three ways in, each a *token source* (a callable returning a fresh ``SalesforceToken``,
which the client calls again when Salesforce ends the session):

- ``JwtBearerFlow``: server to server, no person involved. The connected app holds a
  certificate ("Use digital signatures"); m365sync signs a JWT with the matching private
  key for the integration user (``sub``), audience Salesforce's login URL. The user must be
  pre-authorized for the app (admin approved).
- ``ClientCredentialsFlow``: consumer key and secret, on the org's My Domain only; the
  connected app names the Run As user.
- ``WebServerFlow``: "Connect Salesforce" by a person: ``start`` gives the authorization URL
  (with a PKCE ``code_challenge`` and a ``state``), ``finish`` redeems the code the callback
  carries; its refresh token then feeds a ``RefreshTokenFlow``.

Login URLs are parameters (default: the ``salesforce_login_url`` setting), never literals:
production ``https://login.salesforce.com``, sandbox ``https://test.salesforce.com``, or a
My Domain ``https://<name>.my.salesforce.com`` (and sfsim's address in tests).

Secrets (consumer secret, private key, access and refresh tokens, PKCE verifier) never
appear in a ``repr`` or a log line. Every refusal is raised as a
``m365sync.salesforce.errors`` category.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from m365sync.crypto import generate_self_signed_certificate
from m365sync.errors import ValidationFailed
from m365sync.salesforce._http import SalesforceSession
from m365sync.salesforce.errors import (
    OAuthFlow,
    SignInIncomplete,
    UnexpectedResponse,
    classify_exception,
    classify_oauth_error,
)
from m365sync.settings import Settings

log = logging.getLogger(__name__)

# The audiences Salesforce documents for the JWT bearer flow. They name the authorization
# server; m365sync never sends a request to them unless the login URL says so.
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"

DEFAULT_SCOPES = ("api", "refresh_token")
JWT_LIFETIME = dt.timedelta(minutes=3)


# -- tokens and secrets ------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SalesforceToken:
    """A Salesforce session: the access token and where to use it.

    ``instance_url`` is the org's REST host (use it, not the login URL, for API calls);
    ``identity_url`` is Salesforce's ``id`` (``https://login.../id/<org id>/<user id>``);
    ``issued_at`` comes from Salesforce's ``issued_at`` (epoch milliseconds). Salesforce
    says nothing about when a session ends (the org's session timeout decides), so neither
    does this: a 401 ``INVALID_SESSION_ID`` is the signal to get a new one.
    """

    access_token: str
    instance_url: str
    identity_url: str
    issued_at: dt.datetime
    scopes: frozenset[str] = frozenset()
    refresh_token: str | None = None
    token_type: str = "Bearer"
    signature: str | None = None

    @property
    def org_id(self) -> str:
        return _identity_part(self.identity_url, 0)

    @property
    def user_id(self) -> str:
        return _identity_part(self.identity_url, 1)

    def __repr__(self) -> str:
        return (
            f"SalesforceToken(instance_url={self.instance_url!r}, user_id={self.user_id!r}, "
            f"issued_at={self.issued_at.isoformat()!r}, scopes={sorted(self.scopes)}, "
            f"refresh_token={'***' if self.refresh_token else None})"
        )

    @classmethod
    def from_answer(
        cls, answer: Mapping[str, Any], *, refresh_token: str | None = None
    ) -> SalesforceToken:
        """A token endpoint answer as a token; ``refresh_token`` is kept when the answer
        (a refresh) carries none of its own."""
        try:
            access_token = str(answer["access_token"])
            instance_url = str(answer["instance_url"]).rstrip("/")
        except KeyError as exc:
            raise UnexpectedResponse(
                f"Salesforce's sign-in answer lacks {exc.args[0]}.", code="incomplete_token"
            ) from None
        issued_ms = str(answer.get("issued_at") or "")
        issued_at = (
            dt.datetime.fromtimestamp(int(issued_ms) / 1000, dt.UTC)
            if issued_ms.isdigit()
            else dt.datetime.now(dt.UTC)
        )
        return cls(
            access_token=access_token,
            instance_url=instance_url,
            identity_url=str(answer.get("id") or ""),
            issued_at=issued_at,
            scopes=frozenset(str(answer.get("scope") or "").split()),
            refresh_token=str(answer.get("refresh_token") or "") or refresh_token,
            token_type=str(answer.get("token_type") or "Bearer"),
            signature=str(answer["signature"]) if answer.get("signature") else None,
        )


def _identity_part(identity_url: str, index: int) -> str:
    parts = [p for p in urlsplit(identity_url).path.split("/") if p]
    return parts[1 + index] if len(parts) >= 3 and parts[0] == "id" else ""


@dataclass(frozen=True)
class ConsumerSecret:
    """A connected app's consumer secret."""

    value: str

    def __repr__(self) -> str:
        return "ConsumerSecret(***)"


@dataclass(frozen=True)
class JwtSigningKey:
    """The private key m365sync signs JWTs with, and the certificate to upload to the
    connected app ("Use digital signatures")."""

    private_key_pem: str
    certificate_pem: str | None = None

    def __post_init__(self) -> None:
        try:
            key = serialization.load_pem_private_key(self.private_key_pem.encode(), None)
        except (ValueError, TypeError) as exc:
            raise ValidationFailed(
                "The private key for Salesforce's JWT sign-in could not be read.",
                fix="Give the unencrypted PEM private key (-----BEGIN PRIVATE KEY-----) whose "
                "certificate is uploaded to the connected app.",
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValidationFailed(
                "Salesforce's JWT sign-in needs an RSA private key.",
                fix="Generate an RSA key pair (2048 bits or more) and upload its certificate "
                "to the connected app.",
            )

    @property
    def certificate_fingerprint(self) -> str | None:
        """SHA-256 of the certificate, to compare with what the connected app shows."""
        if not self.certificate_pem:
            return None
        certificate = x509.load_pem_x509_certificate(self.certificate_pem.encode())
        return certificate.fingerprint(hashes.SHA256()).hex(":").upper()

    def __repr__(self) -> str:
        return f"JwtSigningKey(certificate_fingerprint={self.certificate_fingerprint!r})"


def generate_signing_key(common_name: str, *, days: int = 730) -> JwtSigningKey:
    """A new RSA key pair and self-signed certificate for the JWT bearer flow: upload the
    certificate to the connected app, keep the key (sealed at rest by the caller)."""
    made = generate_self_signed_certificate(common_name, days=days)
    return JwtSigningKey(private_key_pem=made.private_key_pem, certificate_pem=made.certificate_pem)


# -- the token endpoint ------------------------------------------------------------------------


class TokenSource(Protocol):
    """Gives a fresh Salesforce session each time it is called."""

    def __call__(self) -> SalesforceToken: ...


def normalize_login_url(login_url: str) -> str:
    """``https://host`` (no path, no trailing slash); anything else is refused."""
    parts = urlsplit(login_url.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise ValidationFailed(
            f"The Salesforce login URL {login_url!r} is not an https:// address.",
            fix="Use https://login.salesforce.com (production), https://test.salesforce.com "
            "(sandbox) or the org's My Domain, https://<name>.my.salesforce.com.",
        )
    return f"https://{parts.netloc}"


def jwt_audience(login_url: str) -> str:
    """The ``aud`` Salesforce expects for a JWT posted to ``login_url``: its documented
    login URL for production (also behind a My Domain) or for sandboxes; any other host
    (an Experience Cloud site, a local emulator) is its own audience."""
    host = (urlsplit(login_url).hostname or "").lower()
    sandbox_host = urlsplit(SANDBOX_AUDIENCE).hostname or ""
    production_host = urlsplit(PRODUCTION_AUDIENCE).hostname or ""
    if host == sandbox_host or host.endswith(".sandbox.my.salesforce.com"):
        return SANDBOX_AUDIENCE
    if host == production_host or host.endswith(".my.salesforce.com"):
        return PRODUCTION_AUDIENCE
    return normalize_login_url(login_url)


class _TokenEndpoint:
    """``{login_url}/services/oauth2/token`` and its siblings."""

    def __init__(
        self, settings: Settings, login_url: str | None, http: requests.Session | None
    ) -> None:
        self.login_url = normalize_login_url(login_url or settings.salesforce_login_url)
        self._http = http if http is not None else SalesforceSession(settings)

    @property
    def token_url(self) -> str:
        return f"{self.login_url}/services/oauth2/token"

    def request_token(
        self,
        form: Mapping[str, str],
        *,
        flow: OAuthFlow,
        auth: tuple[str, str] | None = None,
        refresh_token: str | None = None,
        redirect_uri: str | None = None,
    ) -> SalesforceToken:
        try:
            response = self._http.post(
                self.token_url,
                data=dict(form),
                auth=auth,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise classify_exception(exc) from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict):
            error = classify_oauth_error(
                answer if isinstance(answer, dict) else None,
                status=response.status_code,
                flow=flow,
                redirect_uri=redirect_uri,
            )
            log.info(
                "salesforce token (%s) at %s -> %s %s",
                flow,
                self.login_url,
                response.status_code,
                error.code,
            )
            raise error
        return SalesforceToken.from_answer(answer, refresh_token=refresh_token)

    def revoke(self, token: str) -> None:
        try:
            self._http.post(f"{self.login_url}/services/oauth2/revoke", data={"token": token})
        except requests.RequestException as exc:
            raise classify_exception(exc) from exc


class JwtBearerFlow:
    """The integration user's session through the JWT bearer flow (no secret, no person).

    ``audience`` defaults to ``jwt_audience(login_url)``."""

    def __init__(
        self,
        settings: Settings,
        *,
        consumer_key: str,
        username: str,
        signing_key: JwtSigningKey,
        login_url: str | None = None,
        audience: str | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self._endpoint = _TokenEndpoint(settings, login_url, http)
        self.consumer_key = consumer_key
        self.username = username
        self.audience = audience or jwt_audience(self._endpoint.login_url)
        self._signing_key = signing_key

    @property
    def login_url(self) -> str:
        return self._endpoint.login_url

    def assertion(self, now: dt.datetime | None = None) -> str:
        """The signed JWT: ``iss`` consumer key, ``sub`` username, ``aud``, ``exp`` 3
        minutes ahead (Salesforce's maximum)."""
        issued = now or dt.datetime.now(dt.UTC)
        claims = {
            "iss": self.consumer_key,
            "sub": self.username,
            "aud": self.audience,
            "exp": int((issued + JWT_LIFETIME).timestamp()),
        }
        return jwt.encode(claims, self._signing_key.private_key_pem, algorithm="RS256")

    def __call__(self) -> SalesforceToken:
        return self._endpoint.request_token(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self.assertion(),
            },
            flow="jwt_bearer",
        )

    def __repr__(self) -> str:
        return (
            f"JwtBearerFlow(login_url={self.login_url!r}, username={self.username!r}, "
            f"audience={self.audience!r})"
        )


class ClientCredentialsFlow:
    """The Run As user's session through the client credentials flow. ``login_url`` must
    be the org's My Domain: Salesforce refuses this flow on its shared login hosts."""

    def __init__(
        self,
        settings: Settings,
        *,
        consumer_key: str,
        consumer_secret: ConsumerSecret,
        login_url: str | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self._endpoint = _TokenEndpoint(settings, login_url, http)
        self.consumer_key = consumer_key
        self._secret = consumer_secret

    @property
    def login_url(self) -> str:
        return self._endpoint.login_url

    def __call__(self) -> SalesforceToken:
        return self._endpoint.request_token(
            {"grant_type": "client_credentials"},
            flow="client_credentials",
            auth=(self.consumer_key, self._secret.value),
        )

    def __repr__(self) -> str:
        return f"ClientCredentialsFlow(login_url={self.login_url!r})"


class RefreshTokenFlow:
    """A person's connection, kept alive with the refresh token ``WebServerFlow`` got."""

    def __init__(
        self,
        settings: Settings,
        *,
        consumer_key: str,
        refresh_token: str,
        consumer_secret: ConsumerSecret | None = None,
        login_url: str | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self._endpoint = _TokenEndpoint(settings, login_url, http)
        self.consumer_key = consumer_key
        self._refresh_token = refresh_token
        self._secret = consumer_secret

    @property
    def login_url(self) -> str:
        return self._endpoint.login_url

    def __call__(self) -> SalesforceToken:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self.consumer_key,
        }
        if self._secret is not None:
            form["client_secret"] = self._secret.value
        return self._endpoint.request_token(
            form, flow="refresh_token", refresh_token=self._refresh_token
        )

    def __repr__(self) -> str:
        return f"RefreshTokenFlow(login_url={self.login_url!r}, refresh_token=***)"


@dataclass(frozen=True)
class AuthorizationRequest:
    """One "Connect Salesforce" attempt: send the person to ``url``; keep the rest (sealed)
    until the callback, then hand both to ``WebServerFlow.finish``."""

    url: str
    state: str
    redirect_uri: str
    code_verifier: str = field(repr=False)

    def __repr__(self) -> str:
        return f"AuthorizationRequest(url={self.url!r}, redirect_uri={self.redirect_uri!r})"


class WebServerFlow:
    """ "Connect Salesforce": the web server flow with PKCE (S256) and a ``state``."""

    def __init__(
        self,
        settings: Settings,
        *,
        consumer_key: str,
        redirect_uri: str,
        consumer_secret: ConsumerSecret | None = None,
        login_url: str | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._endpoint = _TokenEndpoint(settings, login_url, http)
        self.consumer_key = consumer_key
        self.redirect_uri = redirect_uri
        self._secret = consumer_secret

    @property
    def login_url(self) -> str:
        return self._endpoint.login_url

    def start(
        self,
        *,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        login_hint: str | None = None,
        prompt: str | None = None,
    ) -> AuthorizationRequest:
        """The authorization URL (``response_type=code``, ``code_challenge`` S256,
        ``state``) and the secrets to keep until the callback."""
        verifier = secrets.token_urlsafe(64)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": self.consumer_key,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge.rstrip(b"=").decode("ascii"),
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        if prompt:
            params["prompt"] = prompt
        return AuthorizationRequest(
            url=f"{self.login_url}/services/oauth2/authorize?{urlencode(params)}",
            state=state,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )

    def finish(self, request: AuthorizationRequest, callback: Mapping[str, str]) -> SalesforceToken:
        """Redeem the ``code`` of the callback's query parameters; the answer carries the
        refresh token (when the ``refresh_token`` scope was granted)."""
        if not hmac.compare_digest(str(callback.get("state") or ""), request.state):
            raise SignInIncomplete(
                "This Salesforce sign-in response does not match the sign-in that was started.",
                code="state_mismatch",
            )
        if callback.get("error"):
            raise classify_oauth_error(
                {
                    "error": callback["error"],
                    "error_description": callback.get("error_description", ""),
                },
                status=None,
                flow="authorization_code",
                redirect_uri=request.redirect_uri,
            )
        code = callback.get("code")
        if not code:
            raise SignInIncomplete(
                "The Salesforce sign-in response carries no authorization code.",
                code="missing_code",
            )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "client_id": self.consumer_key,
            "code_verifier": request.code_verifier,
        }
        if self._secret is not None:
            form["client_secret"] = self._secret.value
        return self._endpoint.request_token(
            form, flow="authorization_code", redirect_uri=request.redirect_uri
        )

    def refresher(self, refresh_token: str) -> RefreshTokenFlow:
        """The token source that keeps this connection alive."""
        return RefreshTokenFlow(
            self._settings,
            consumer_key=self.consumer_key,
            refresh_token=refresh_token,
            consumer_secret=self._secret,
            login_url=self.login_url,
            http=self._http,
        )

    def __repr__(self) -> str:
        return f"WebServerFlow(login_url={self.login_url!r}, redirect_uri={self.redirect_uri!r})"


def revoke(
    settings: Settings,
    token: str,
    *,
    login_url: str | None = None,
    http: requests.Session | None = None,
) -> None:
    """Revoke an access or refresh token (a refresh token ends its sessions too): the
    "Disconnect" of a Salesforce connection. A token Salesforce no longer knows is not an
    error: the connection is gone either way."""
    _TokenEndpoint(settings, login_url, http).revoke(token)


__all__ = [
    "DEFAULT_SCOPES",
    "AuthorizationRequest",
    "ClientCredentialsFlow",
    "ConsumerSecret",
    "JwtBearerFlow",
    "JwtSigningKey",
    "RefreshTokenFlow",
    "SalesforceToken",
    "TokenSource",
    "WebServerFlow",
    "generate_signing_key",
    "jwt_audience",
    "normalize_login_url",
    "revoke",
]
