"""MSAL, configured once: tenant discovery, app-only and delegated token acquisition.

MSAL owns tokens and their refresh; this module owns how MSAL is built (authority from the
``authority_host`` setting, TLS trust from ``ca_bundle``, instance discovery off for hosts
that are not Microsoft's, and built on first use, so no database transaction waits on
Entra ID), its HTTP client (``EntraSession``: Entra ID's 429, 5xx and unreadable answers
retried with back-off before MSAL reads them), its token cache (handed back serialized
through ``on_cache_change`` whenever ``has_state_changed``, for the caller to seal and
store), and turning every failure into a ``m365sync.microsoft.errors`` category.

The serialized cache also carries the tenant's OpenID configuration (``DiscoveryCache``):
MSAL asks for it whenever its application is built, that is once per process, so without it
every ``m365sync sync`` would begin with a round trip to Entra ID even when the token it
holds is still good. Kept for a day, as MSAL's own ``http_cache`` keeps it.

Access tokens are decoded without signature verification only to read their claims
(``roles``, ``scp``, ``tid``): they came from the authority over TLS, and Graph verifies them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import msal
import orjson
import requests
from cryptography.hazmat.primitives import hashes, serialization
from requests.adapters import HTTPAdapter

from m365sync.crypto import generate_self_signed_certificate, private_key_pem
from m365sync.errors import ValidationFailed
from m365sync.microsoft.errors import (
    ENTRA_UNAVAILABLE_FIX,
    InvalidCredentials,
    MicrosoftError,
    SecretIdGiven,
    TenantNotFound,
    Transient,
    UnexpectedResponse,
    classify_aad_error,
    classify_entra_response,
    looks_like_secret_id,
)
from m365sync.settings import Settings

if TYPE_CHECKING:
    from cryptography import x509

MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
        "login.microsoftonline.de",
        "sts.windows.net",
    }
)

log = logging.getLogger(__name__)

# The Office 365 and Sign in with Microsoft callbacks take the answer as a query (a GET), not
# form_post: Microsoft's form_post is a cross-site POST, which browsers send without the
# SameSite=Lax session cookie the callback needs to find the flow. The flow is still bound
# by state, nonce and PKCE, and MSAL sends no token in a URL. MSAL warns on every flow
# otherwise, a line that would fill the log and that nobody could act on.
_FORM_POST_ADVICE = r"response_mode='form_post' is recommended"


def _quiet_form_post_advice() -> None:
    """Ignore that one warning, checked before each flow: a filter added once at import
    would be lost by code that restores the filters it found (``warnings.catch_warnings``)."""
    if not any(
        f[0] == "ignore" and f[1] is not None and f[1].pattern == _FORM_POST_ADVICE
        for f in warnings.filters
    ):
        warnings.filterwarnings("ignore", message=_FORM_POST_ADVICE, category=UserWarning)


CacheListener = Callable[[str], None]


def is_microsoft_host(authority_host: str) -> bool:
    return (urlsplit(authority_host).hostname or "").lower() in MICROSOFT_AUTHORITY_HOSTS


def graph_default_scope(settings: Settings) -> list[str]:
    return [f"{settings.graph_resource.rstrip('/')}/.default"]


def read_claims(token: str) -> dict[str, Any]:
    """The claims of an access token (unverified: read only, see module docstring): the
    JSON object its middle part encodes (base64url). Read without a JWT library, which
    would load X.509 for every command that syncs. ``{}`` for an opaque token (personal
    accounts) or anything else that is not a signed JWT's three parts."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


# -- Entra ID's answers: retried, then classified -----------------------------------------


def retry_delay(error: MicrosoftError, attempt: int, settings: Settings) -> float | None:
    """Seconds to wait before asking Entra ID again after ``error`` (``attempt`` retries so
    far), or ``None`` to give up: the Graph client's policy (``graph_max_retries``, the
    ``Retry-After`` Microsoft asked for, else exponential back-off with jitter). A wait
    longer than ``graph_backoff_max_seconds`` is not slept through: the caller gives up at
    once and its unit is retried when Microsoft asked."""
    if not error.retryable or attempt >= settings.graph_max_retries:
        return None
    if error.retry_after is not None:
        asked = error.retry_after
        return asked if asked <= settings.graph_backoff_max_seconds else None
    delay: float = settings.graph_backoff_base_seconds * (2**attempt)
    return min(settings.graph_backoff_max_seconds, delay * (0.5 + random.random() / 2))  # noqa: S311 (jitter)


def _unreachable(settings: Settings, exc: Exception) -> Transient:
    return Transient(
        f"Microsoft unavailable, retrying: could not reach Microsoft Entra ID at "
        f"{settings.authority_host} ({type(exc).__name__}).",
        fix=ENTRA_UNAVAILABLE_FIX,
    )


def _what(url: str) -> tuple[str, bool]:
    """How people call the request to ``url``, and whether it is tenant discovery."""
    path = urlsplit(url).path
    if path.endswith("/.well-known/openid-configuration"):
        return "tenant discovery", True
    if path.endswith("/token"):
        return "the token request", False
    return "sign-in", False


class EntraAnswerError(requests.RequestException):
    """Raised by ``EntraSession`` in MSAL's place: Entra ID failed even after the retries.
    A ``RequestException`` so MSAL treats it as the network error it is (it still serves a
    cached token that is merely due for refresh); ``error`` is its category."""

    def __init__(self, error: MicrosoftError) -> None:
        super().__init__(error.message)
        self.error = error


DISCOVERY_LIFETIME_SECONDS = 24 * 3600
"""How long a tenant's OpenID configuration is reused: MSAL's ``http_cache`` keeps it a day."""
TOKEN_EXPIRY_MARGIN_SECONDS = 5 * 60
"""MSAL's cache stops returning an access token this long before it expires."""


class DiscoveryCache:
    """Tenant discovery answers (OpenID configuration documents) by URL, each with when it
    was fetched; reused for ``DISCOVERY_LIFETIME_SECONDS``. ``changed`` says a new answer
    arrived since it was last serialized."""

    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self._entries: dict[str, tuple[float, str]] = {}
        for url, entry in (entries or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("body"), str):
                self._entries[str(url)] = (float(entry.get("fetched_at", 0)), entry["body"])
        self.changed = False

    def get(self, url: str) -> str | None:
        entry = self._entries.get(url)
        if entry is None or not 0 <= time.time() - entry[0] < DISCOVERY_LIFETIME_SECONDS:
            return None
        return entry[1]

    def put(self, url: str, body: str) -> None:
        self._entries[url] = (time.time(), body)
        self.changed = True

    def as_json(self) -> dict[str, Any]:
        return {url: {"fetched_at": at, "body": body} for url, (at, body) in self._entries.items()}


_CACHE_FORMAT = "m365sync.entra-cache.1"
"""Marks a serialized cache holding MSAL's token cache and the discovery answers; a blob
without it is an MSAL token cache alone (as stored before discovery was cached)."""


def _read_cache_blob(blob: str | None) -> tuple[str | None, DiscoveryCache]:
    """MSAL's serialized token cache and the discovery answers stored in ``blob``."""
    if not blob:
        return None, DiscoveryCache()
    try:
        state = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return blob, DiscoveryCache()
    if isinstance(state, dict) and state.get("format") == _CACHE_FORMAT:
        msal_state = state.get("msal")
        discovery = state.get("discovery")
        return (
            msal_state if isinstance(msal_state, str) else None,
            DiscoveryCache(discovery if isinstance(discovery, dict) else None),
        )
    return blob, DiscoveryCache()


class _SharedTrust(HTTPAdapter):
    """HTTPS with ``Settings.ssl_context`` when the ``ca_bundle`` setting is set: the
    certificates Graph's client trusts, loaded once per process, instead of the bundle
    loaded again for each new connection (about 25 ms each)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        super().__init__()

    def _shared(self, verify: Any) -> bool:
        return bool(self._settings.ca_bundle) and verify == str(self._settings.ca_bundle)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._shared(verify):
            pool.pop("ca_certs", None)
            pool["ssl_context"] = self._settings.ssl_context
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if self._shared(verify):
            # requests names the bundle on the pool as well, and urllib3 would load it into
            # the shared context again for every new connection.
            conn.ca_certs = None


class EntraSession(requests.Session):
    """MSAL's HTTP client: retries what Entra ID answers when unwell, before MSAL sees it.

    MSAL reads a 5xx from tenant discovery or the token endpoint as an exception of its
    own, a 429 or an unreadable discovery answer as "this tenant does not exist", and an
    unreadable token answer as a ``ValueError``. Here 429, 5xx, unreadable answers and
    network errors are retried like Graph's (``retry_delay``); if Entra ID still fails,
    ``EntraAnswerError`` carries the category (``Throttled`` / ``Transient``, or
    ``TenantNotFound`` only when discovery says so). Timeouts are ``graph_timeout_seconds``
    and TLS trust is ``tls_verify`` (the ``ca_bundle`` setting wins over
    ``REQUESTS_CA_BUNDLE``).
    """

    def __init__(self, settings: Settings, discovery: DiscoveryCache | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.verify = settings.tls_verify
        self.discovery = discovery
        self.mount("https://", _SharedTrust(settings))

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        if self.settings.ca_bundle:
            merged["verify"] = self.verify
        return merged

    def request(  # type: ignore[override]  # MSAL passes keywords only
        self, method: str, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.settings.graph_timeout_seconds)
        text_url = url.decode() if isinstance(url, bytes) else url
        what, discovery = _what(text_url)
        cacheable = discovery and method.upper() == "GET" and self.discovery is not None
        if cacheable and self.discovery is not None:
            known = self.discovery.get(text_url)
            if known is not None:
                return _cached_response(text_url, known)
        attempt = 0
        while True:
            error: MicrosoftError | None
            try:
                response = super().request(method, url, **kwargs)
            except requests.RequestException as exc:
                error = _unreachable(self.settings, exc)
            else:
                error = classify_entra_response(
                    response.status_code,
                    response.content,
                    response.headers,
                    what=what,
                    discovery=discovery,
                )
                if error is None:
                    if cacheable and self.discovery is not None and response.status_code == 200:
                        self.discovery.put(text_url, response.text)
                    return response
            delay = retry_delay(error, attempt, self.settings)
            log.info(
                "entra %s %s -> %s (attempt %d%s)",
                method,
                urlsplit(str(url)).path,
                error.http_status or type(error).__name__,
                attempt + 1,
                f", retry in {delay:.1f}s" if delay is not None else ", giving up",
            )
            if delay is None:
                raise EntraAnswerError(error)
            attempt += 1
            time.sleep(delay)  # MSAL calls from a worker thread, never the event loop


def _cached_response(url: str, body: str) -> requests.Response:
    """A stored discovery answer, as MSAL reads a fresh one."""
    response = requests.Response()
    response.status_code = 200
    response.url = url
    response.encoding = "utf-8"
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response._content = body.encode("utf-8")
    return response


# -- tenant discovery -----------------------------------------------------------------------


async def discover_tenant(
    settings: Settings, domain: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """The tenant id owning ``domain``, from
    ``{authority}/{domain}/v2.0/.well-known/openid-configuration``. Retried like every Entra
    ID request (``retry_delay``); ``TenantNotFound`` only when Entra ID says the domain is
    unknown, ``Throttled`` / ``Transient`` when it is unwell."""
    url = f"{settings.authority_host.rstrip('/')}/{domain}/v2.0/.well-known/openid-configuration"
    async with httpx.AsyncClient(
        verify=settings.ssl_context if transport is None else True,
        transport=transport,
        timeout=settings.graph_timeout_seconds,
    ) as client:
        attempt = 0
        while True:
            error: MicrosoftError | None
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                error = _unreachable(settings, exc)
            else:
                error = classify_entra_response(
                    response.status_code,
                    response.content,
                    response.headers,
                    what="tenant discovery",
                    discovery=True,
                )
                if error is None:
                    configuration = orjson.loads(response.content)
                    break
            delay = retry_delay(error, attempt, settings)
            if delay is None:
                if isinstance(error, TenantNotFound):
                    raise TenantNotFound(
                        f"Microsoft knows no tenant for the domain {domain}.",
                        code=error.code,
                        http_status=error.http_status,
                    )
                raise error
            attempt += 1
            await asyncio.sleep(delay)
    issuer = str(configuration.get("issuer") or configuration.get("token_endpoint") or "")
    parts = [p for p in urlsplit(issuer).path.split("/") if p]
    if not parts:
        raise UnexpectedResponse(f"The OpenID configuration for {domain} names no tenant.")
    return parts[0]


# -- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSecret:
    value: str

    def __repr__(self) -> str:
        return "ClientSecret(***)"


@dataclass(frozen=True)
class ClientCertificate:
    private_key_pem: str
    certificate_pem: str
    thumbprint: str

    def __repr__(self) -> str:
        return f"ClientCertificate(thumbprint={self.thumbprint})"


Credential = ClientSecret | ClientCertificate


def certificate_thumbprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 (Entra's thumbprint is SHA-1)


def _client_certificate(key: Any, certificate: x509.Certificate) -> ClientCertificate:
    """The pair as MSAL takes it: an unencrypted PKCS#8 key (sealed at rest by the caller),
    the PEM certificate, and the SHA-1 thumbprint Entra ID shows."""
    return ClientCertificate(
        private_key_pem=private_key_pem(key),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        thumbprint=certificate_thumbprint(certificate),
    )


def generate_certificate(common_name: str, *, days: int = 730) -> ClientCertificate:
    """A new RSA key pair and self-signed certificate: upload the certificate to the app
    registration (Certificates & secrets → Certificates), keep the key here."""
    made = generate_self_signed_certificate(common_name, days=days)
    return ClientCertificate(
        private_key_pem=made.private_key_pem,
        certificate_pem=made.certificate_pem,
        thumbprint=certificate_thumbprint(made.certificate),
    )


def load_certificate(content: bytes, password: str | None = None) -> ClientCertificate:
    """A certificate and its private key from an uploaded PEM (key + certificate) or PFX."""
    from cryptography import x509  # loaded here: most commands never read a certificate
    from cryptography.hazmat.primitives.serialization import pkcs12

    pw = password.encode("utf-8") if password else None
    key: Any
    certificate: x509.Certificate | None
    try:
        if b"-----BEGIN" in content:
            key = serialization.load_pem_private_key(content, password=pw)
            certificate = x509.load_pem_x509_certificate(content)
        else:
            key, certificate, _ = pkcs12.load_key_and_certificates(content, pw)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "The certificate file could not be read.",
            fix="Upload a PEM file holding both the private key and the certificate, or a PFX "
            "with its password.",
        ) from exc
    if key is None or certificate is None:
        raise ValidationFailed(
            "The file holds no private key and certificate pair.",
            fix="Export the certificate with its private key (PFX, or PEM with both parts).",
        )
    return _client_certificate(key, certificate)


def _msal_credential(credential: Credential) -> str | dict[str, str]:
    if isinstance(credential, ClientSecret):
        return credential.value
    return {"private_key": credential.private_key_pem, "thumbprint": credential.thumbprint}


# -- MSAL applications ----------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    token: str
    claims: dict[str, Any]

    @property
    def roles(self) -> frozenset[str]:
        roles = self.claims.get("roles") or []
        return frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scp") or "").split())

    def __repr__(self) -> str:
        return f"AccessToken(roles={sorted(self.roles)}, scopes={sorted(self.scopes)})"


class _CachedApp:
    """An MSAL confidential client plus its serialized cache, reported on change.

    The MSAL application is built on first use, not here: building it asks Entra ID for the
    tenant's OpenID configuration, and that network call (with its retries) belongs to the
    token request that needs it, never to the database transaction that looked up the
    connection."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str,
        tenant_id: str,
        credential: Credential,
        cache_blob: str | None,
        on_cache_change: CacheListener | None,
    ) -> None:
        if isinstance(credential, ClientSecret) and looks_like_secret_id(credential.value):
            raise SecretIdGiven()
        self.settings = settings
        self.cache = msal.SerializableTokenCache()
        msal_state, self.discovery = _read_cache_blob(cache_blob)
        if msal_state:
            self.cache.deserialize(msal_state)
        self._on_cache_change = on_cache_change
        self._client_id = client_id
        self._tenant_id = tenant_id
        self._credential = credential
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._held: tuple[str, float] | None = None  # (access token, monotonic time it ends)

    def _application(self) -> msal.ConfidentialClientApplication:
        """The MSAL application (built now if needed); call with ``_lock`` held."""
        if self._app is None:
            authority = f"{self.settings.authority_host.rstrip('/')}/{self._tenant_id}"
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=_msal_credential(self._credential),
                    authority=authority,
                    token_cache=self.cache,
                    instance_discovery=False
                    if not is_microsoft_host(self.settings.authority_host)
                    else None,
                    http_client=EntraSession(self.settings, self.discovery),
                )
            except ValueError as exc:
                # Entra ID's answers were checked by ``EntraSession``: what is left is an
                # authority MSAL can't use at all (not an unknown tenant: Entra ID said so
                # above if it was).
                raise UnexpectedResponse(
                    f"MSAL can't use the Microsoft Entra ID authority {authority}: {exc}",
                    fix="Check the authority host setting and the connection's tenant id.",
                ) from exc
        return self._app

    def forget_tokens(self) -> None:
        """Drop every token held in memory (a one-off sign-in whose token must not outlive
        its step): the cache is emptied and MSAL's application rebuilt on next use."""
        with self._lock:
            self.cache = msal.SerializableTokenCache()
            self._app = None
            self._held = None

    def _persist(self) -> None:
        changed = self.cache.has_state_changed or self.discovery.changed
        if changed and self._on_cache_change is not None:
            self._on_cache_change(self.serialize())
            self.cache.has_state_changed = False
            self.discovery.changed = False

    def serialize(self) -> str:
        """MSAL's token cache and the discovery answers, as one string to seal and store."""
        state = {
            "format": _CACHE_FORMAT,
            "msal": self.cache.serialize(),
            "discovery": self.discovery.as_json(),
        }
        return orjson.dumps(state).decode()

    def _fail(self, result: Mapping[str, Any]) -> MicrosoftError:
        error = classify_aad_error(result)
        if (
            isinstance(error, InvalidCredentials)
            and isinstance(self._credential, ClientSecret)
            and looks_like_secret_id(self._credential.value)
        ):
            return SecretIdGiven(code=error.code)
        return error

    def acquire(self, *, force_refresh: bool = False, refused: str | None = None) -> AccessToken:
        raise NotImplementedError

    def _cached_access_tokens(self, only: str | None = None) -> list[dict[str, Any]]:
        """MSAL's cached access tokens (only the one whose value is ``only``, if given);
        call with ``_lock`` held."""
        found = self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
        return [item for item in found if only is None or item.get("secret") == only]

    def _hold(self, result: Mapping[str, Any]) -> str:
        """The access token of MSAL's ``result``, held for ``__call__`` as long as MSAL's
        own cache would return it (until five minutes before it expires, or until MSAL
        says to refresh it)."""
        token = str(result["access_token"])
        lifetime = result.get("expires_in")
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
            usable = float(lifetime) - TOKEN_EXPIRY_MARGIN_SECONDS
            refresh_in = result.get("refresh_in")
            if isinstance(refresh_in, int | float) and not isinstance(refresh_in, bool):
                usable = min(usable, float(refresh_in))
            self._held = (token, time.monotonic() + usable) if usable > 0 else None
        return token

    async def __call__(self, *, force_refresh: bool = False, refused: str | None = None) -> str:
        """The access token for a Graph request (a ``TokenSource``). Graph asks before every
        request: the token held from MSAL's last answer is given at once, without a thread
        and MSAL's cache search per request; otherwise MSAL is asked (in a thread: it may
        call Entra ID). ``force_refresh`` (Graph refused the token ``refused``) asks MSAL
        for a new token, unless ``refused`` was already replaced: requests sent together
        with one token are refused together, and the first refusal's new token serves the
        others."""
        held = self._held
        replaced = held is not None and refused is not None and held[0] != refused
        if held is not None and time.monotonic() < held[1] and (not force_refresh or replaced):
            return held[0]
        self._held = None
        token = await asyncio.to_thread(self.acquire, force_refresh=force_refresh, refused=refused)
        return token.token

    def _call(self, fn: Callable[[msal.ConfidentialClientApplication], Any]) -> Any:
        try:
            with self._lock:
                result = fn(self._application())
        except EntraAnswerError as exc:
            raise exc.error from exc
        except requests.RequestException as exc:
            raise _unreachable(self.settings, exc) from exc
        except msal.exceptions.MsalServiceError as exc:  # an error status MSAL saw itself
            raise Transient(
                f"Microsoft unavailable, retrying: Microsoft Entra ID failed ({exc}).",
                fix=ENTRA_UNAVAILABLE_FIX,
            ) from exc
        finally:
            self._persist()
        return result


class AppOnlyAuth(_CachedApp):
    """A service account's tokens (client credentials). Callable as a ``TokenSource``."""

    def acquire(self, *, force_refresh: bool = False, refused: str | None = None) -> AccessToken:
        scopes = graph_default_scope(self.settings)
        if force_refresh:
            # Graph refused the cached token (401): drop it (every cached access token when
            # the caller did not say which) so MSAL asks Entra ID for a new one. A refused
            # token that is no longer cached was replaced by a refusal before this one: MSAL
            # gives that new token. The entries are listed first and removed after, under
            # the lock every other cache user takes: removing while ``search`` still
            # iterates the cache's dict fails with "dictionary changed size during
            # iteration".
            with self._lock:
                for item in self._cached_access_tokens(refused):
                    self.cache.remove_at(item)
        result = self._call(lambda app: app.acquire_token_for_client(scopes=scopes))
        if not isinstance(result, dict) or "access_token" not in result:
            raise self._fail(result if isinstance(result, dict) else {})
        token = self._hold(result)
        return AccessToken(token=token, claims=read_claims(token))


class DelegatedAuth(_CachedApp):
    """A user connection's tokens (authorization code + PKCE, then silent refresh)."""

    def __init__(
        self, *args: Any, scopes: list[str], home_account_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.scopes = scopes
        self.home_account_id = home_account_id

    def start(self, redirect_uri: str, *, login_hint: str | None = None) -> dict[str, Any]:
        """MSAL's auth-code flow (state, nonce, PKCE verifier, ``auth_uri``): keep it until the
        callback, sealed."""
        _quiet_form_post_advice()
        flow: dict[str, Any] = self._call(
            lambda app: app.initiate_auth_code_flow(
                self.scopes,
                redirect_uri=redirect_uri,
                login_hint=login_hint,
                prompt="select_account",
            )
        )
        return flow

    def finish(self, flow: dict[str, Any], auth_response: Mapping[str, str]) -> dict[str, Any]:
        """Redeem the code; returns MSAL's result (``id_token_claims``, ``scope``...)."""
        try:
            result = self._call(
                lambda app: app.acquire_token_by_auth_code_flow(flow, dict(auth_response))
            )
        except ValueError as exc:  # state mismatch, missing code
            raise ValidationFailed(
                "This sign-in response does not match the sign-in that was started (state "
                "mismatch).",
                fix="Start again with Connect your Office 365.",
            ) from exc
        if not isinstance(result, dict) or "access_token" not in result:
            raise self._fail(result if isinstance(result, dict) else {})
        claims = result.get("id_token_claims") or {}
        self.home_account_id = _home_account_id(result, claims)
        return result

    def acquire(self, *, force_refresh: bool = False, refused: str | None = None) -> AccessToken:
        def silently(app: msal.ConfidentialClientApplication) -> Any:
            # A refused token no longer cached was replaced by an earlier refusal: MSAL
            # gives that new one without another refresh.
            force = force_refresh and (refused is None or bool(self._cached_access_tokens(refused)))
            accounts = app.get_accounts()
            account = next(
                (a for a in accounts if a.get("home_account_id") == self.home_account_id),
                accounts[0] if accounts else None,
            )
            if account is None:
                return None
            return app.acquire_token_silent_with_error(self.scopes, account, force_refresh=force)

        result = self._call(silently)
        if result is None:
            raise classify_aad_error({"error": "invalid_grant", "error_codes": [700082]})
        if not isinstance(result, dict) or "access_token" not in result:
            raise self._fail(result if isinstance(result, dict) else {"error": "invalid_grant"})
        token = self._hold(result)
        return AccessToken(token=token, claims=read_claims(token))


class OpenIdSignIn:
    """Sign in with Microsoft: OpenID Connect (authorization code + PKCE, MSAL checking the
    ``state`` and the ID token's nonce) with one app against one tenant's ``authority``.
    Nothing is cached: the caller keeps the flow between the two halves, and the ID token's
    claims are all it reads.

    Entra ID out of reach (or answering 429/5xx until the retries ran out) is ``Transient``,
    with the transport's error as its cause; an answer that doesn't match the flow is
    MSAL's ``ValueError``; Entra ID refusing the sign-in comes back in the result
    (``error``), for the caller to classify."""

    def __init__(
        self, settings: Settings, *, client_id: str, client_secret: str, authority: str
    ) -> None:
        self.settings = settings
        try:
            self._app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=client_secret,
                authority=authority,
                verify=settings.tls_verify,
                http_client=EntraSession(settings),
                instance_discovery=None if is_microsoft_host(settings.authority_host) else False,
                timeout=settings.graph_timeout_seconds,
            )
        except (requests.RequestException, ValueError) as exc:
            raise _unreachable(settings, exc) from exc

    def start(self, scopes: list[str], *, redirect_uri: str, login_hint: str) -> dict[str, Any]:
        """MSAL's flow (``state``, nonce, PKCE verifier, ``auth_uri``): keep it until the
        callback."""
        _quiet_form_post_advice()
        try:
            flow: dict[str, Any] = self._app.initiate_auth_code_flow(
                scopes, redirect_uri=redirect_uri, login_hint=login_hint, prompt="select_account"
            )
        except requests.RequestException as exc:
            raise _unreachable(self.settings, exc) from exc
        return flow

    def finish(
        self, flow: dict[str, Any], auth_response: Mapping[str, str], scopes: list[str]
    ) -> dict[str, Any]:
        """Redeem the code the callback brought; MSAL's result (``id_token_claims``, or
        ``error``)."""
        try:
            result: dict[str, Any] = self._app.acquire_token_by_auth_code_flow(
                flow, dict(auth_response), scopes=scopes
            )
        except requests.RequestException as exc:
            raise _unreachable(self.settings, exc) from exc
        return result


def _home_account_id(result: Mapping[str, Any], claims: Mapping[str, Any]) -> str | None:
    info = result.get("client_info")
    if isinstance(info, str):
        try:
            padded = info + "=" * (-len(info) % 4)
            decoded = json.loads(base64.urlsafe_b64decode(padded))
            return f"{decoded['uid']}.{decoded['utid']}"
        except (ValueError, KeyError):
            pass
    oid, tid = claims.get("oid"), claims.get("tid")
    return f"{oid}.{tid}" if oid and tid else None


__all__ = [
    "AccessToken",
    "AppOnlyAuth",
    "ClientCertificate",
    "ClientSecret",
    "Credential",
    "DelegatedAuth",
    "EntraAnswerError",
    "EntraSession",
    "OpenIdSignIn",
    "discover_tenant",
    "generate_certificate",
    "graph_default_scope",
    "is_microsoft_host",
    "load_certificate",
    "read_claims",
    "retry_delay",
]
