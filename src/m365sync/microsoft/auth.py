"""MSAL, configured once: tenant discovery, app-only and delegated token acquisition.

MSAL owns tokens and their refresh; this module owns how MSAL is built (authority from the
``authority_host`` setting, TLS trust from ``ca_bundle``, instance discovery off for hosts
that are not Microsoft's), its token cache (handed back serialized through
``on_cache_change`` whenever ``has_state_changed``, for the caller to seal and store), and
turning every failure into a ``m365sync.microsoft.errors`` category.

Access tokens are decoded without signature verification only to read their claims
(``roles``, ``scp``, ``tid``): they came from the authority over TLS, and Graph verifies them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from m365sync.errors import ValidationFailed
from m365sync.microsoft.errors import (
    InvalidCredentials,
    MicrosoftError,
    SecretIdGiven,
    TenantNotFound,
    Transient,
    UnexpectedResponse,
    classify_aad_error,
    looks_like_secret_id,
)
from m365sync.settings import Settings

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

CacheListener = Callable[[str], None]


def is_microsoft_host(authority_host: str) -> bool:
    return (urlsplit(authority_host).hostname or "").lower() in MICROSOFT_AUTHORITY_HOSTS


def graph_default_scope(settings: Settings) -> list[str]:
    return [f"{settings.graph_resource.rstrip('/')}/.default"]


def read_claims(token: str) -> dict[str, Any]:
    """The claims of an access token (unverified: read only, see module docstring)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, options={"verify_signature": False, "verify_aud": False, "verify_exp": False}
        )
    except jwt.PyJWTError:
        return {}  # opaque tokens (personal accounts) carry no readable claims
    return claims


# -- tenant discovery -----------------------------------------------------------------------


async def discover_tenant(
    settings: Settings, domain: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """The tenant id owning ``domain``, from
    ``{authority}/{domain}/v2.0/.well-known/openid-configuration``."""
    url = f"{settings.authority_host.rstrip('/')}/{domain}/v2.0/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(
            verify=settings.ssl_context if transport is None else True,
            transport=transport,
            timeout=settings.graph_timeout_seconds,
        ) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise Transient(
            f"Could not reach Microsoft Entra ID at {settings.authority_host} "
            f"({type(exc).__name__})."
        ) from exc
    if response.status_code >= 500:
        raise Transient(http_status=response.status_code)
    try:
        configuration = response.json()
    except ValueError:
        configuration = {}
    if response.status_code >= 400 or not isinstance(configuration, dict):
        error = classify_aad_error(configuration if isinstance(configuration, dict) else {})
        if isinstance(error, TenantNotFound | UnexpectedResponse):
            raise TenantNotFound(
                f"Microsoft knows no tenant for the domain {domain}.",
                code=error.code,
                http_status=response.status_code,
            )
        raise error
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
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        thumbprint=certificate_thumbprint(certificate),
    )


def generate_certificate(common_name: str, *, days: int = 730) -> ClientCertificate:
    """A new RSA key pair and self-signed certificate: upload the certificate to the app
    registration (Certificates & secrets → Certificates), keep the key here."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return _client_certificate(key, certificate)


def load_certificate(content: bytes, password: str | None = None) -> ClientCertificate:
    """A certificate and its private key from an uploaded PEM (key + certificate) or PFX."""
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


class _TrustingSession(requests.Session):
    """requests lets ``REQUESTS_CA_BUNDLE`` override a session's ``verify``; the
    ``ca_bundle`` setting must win, so MSAL gets this session as its ``http_client``."""

    def __init__(self, ca_bundle: str) -> None:
        super().__init__()
        self.verify = ca_bundle

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        merged["verify"] = self.verify
        return merged


def msal_http_client(settings: Settings) -> requests.Session | None:
    """The HTTP client every MSAL application of the product gets (``http_client=``): one
    that trusts the ``ca_bundle`` setting even where ``REQUESTS_CA_BUNDLE`` is set. None
    without the setting (MSAL's own client then trusts what requests trusts)."""
    if not settings.ca_bundle:
        return None
    session = _TrustingSession(str(settings.ca_bundle))
    # MSAL applies its ``timeout`` only to a client it builds itself.
    session.request = functools.partial(  # type: ignore[method-assign]
        session.request, timeout=settings.graph_timeout_seconds
    )
    return session


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
    """An MSAL confidential client plus its serialized cache, reported on change."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str,
        tenant_id: str,
        credential: Credential,
        cache_blob: str | None,
        on_cache_change: CacheListener | None,
        http_client: Any = None,
    ) -> None:
        if isinstance(credential, ClientSecret) and looks_like_secret_id(credential.value):
            raise SecretIdGiven()
        self.settings = settings
        self.cache = msal.SerializableTokenCache()
        if cache_blob:
            self.cache.deserialize(cache_blob)
        self._on_cache_change = on_cache_change
        self._credential = credential
        self._lock = threading.Lock()
        authority = f"{settings.authority_host.rstrip('/')}/{tenant_id}"
        if http_client is None:
            http_client = msal_http_client(settings)
        try:
            self.app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=_msal_credential(credential),
                authority=authority,
                token_cache=self.cache,
                instance_discovery=False
                if not is_microsoft_host(settings.authority_host)
                else None,
                verify=settings.tls_verify,
                http_client=http_client,
                timeout=settings.graph_timeout_seconds,
            )
        except requests.RequestException as exc:
            raise Transient(f"Could not reach Microsoft Entra ID ({type(exc).__name__}).") from exc
        except ValueError as exc:
            raise TenantNotFound(f"Microsoft Entra ID knows no tenant {tenant_id}.") from exc

    def _persist(self) -> None:
        if self.cache.has_state_changed and self._on_cache_change is not None:
            self._on_cache_change(self.cache.serialize())
            self.cache.has_state_changed = False

    def _fail(self, result: Mapping[str, Any]) -> MicrosoftError:
        error = classify_aad_error(result)
        if (
            isinstance(error, InvalidCredentials)
            and isinstance(self._credential, ClientSecret)
            and looks_like_secret_id(self._credential.value)
        ):
            return SecretIdGiven(code=error.code)
        return error

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            with self._lock:
                result = fn()
        except requests.RequestException as exc:
            raise Transient(f"Could not reach Microsoft Entra ID ({type(exc).__name__}).") from exc
        finally:
            self._persist()
        return result


class AppOnlyAuth(_CachedApp):
    """A service account's tokens (client credentials). Callable as a ``TokenSource``."""

    def acquire(self, *, force_refresh: bool = False) -> AccessToken:
        scopes = graph_default_scope(self.settings)
        if force_refresh:
            # Graph refused the cached token (401): drop every cached access token so MSAL
            # asks Entra ID for a new one. The entries are listed first and removed after,
            # under the lock every other cache user takes: removing while ``search`` still
            # iterates the cache's dict fails with "dictionary changed size during
            # iteration".
            with self._lock:
                stale = list(self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN))
                for item in stale:
                    self.cache.remove_at(item)
        result = self._call(lambda: self.app.acquire_token_for_client(scopes=scopes))
        if not isinstance(result, dict) or "access_token" not in result:
            raise self._fail(result if isinstance(result, dict) else {})
        token = str(result["access_token"])
        return AccessToken(token=token, claims=read_claims(token))

    async def __call__(self, *, force_refresh: bool = False) -> str:
        return (await asyncio.to_thread(self.acquire, force_refresh=force_refresh)).token


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
        flow: dict[str, Any] = self.app.initiate_auth_code_flow(
            self.scopes, redirect_uri=redirect_uri, login_hint=login_hint, prompt="select_account"
        )
        return flow

    def finish(self, flow: dict[str, Any], auth_response: Mapping[str, str]) -> dict[str, Any]:
        """Redeem the code; returns MSAL's result (``id_token_claims``, ``scope``...)."""
        try:
            result = self._call(
                lambda: self.app.acquire_token_by_auth_code_flow(flow, dict(auth_response))
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

    def acquire(self, *, force_refresh: bool = False) -> AccessToken:
        accounts = self.app.get_accounts()
        account = next(
            (a for a in accounts if a.get("home_account_id") == self.home_account_id),
            accounts[0] if accounts else None,
        )
        if account is None:
            raise classify_aad_error({"error": "invalid_grant", "error_codes": [700082]})
        result = self._call(
            lambda: self.app.acquire_token_silent_with_error(
                self.scopes, account, force_refresh=force_refresh
            )
        )
        if not isinstance(result, dict) or "access_token" not in result:
            raise self._fail(result if isinstance(result, dict) else {"error": "invalid_grant"})
        token = str(result["access_token"])
        return AccessToken(token=token, claims=read_claims(token))

    async def __call__(self, *, force_refresh: bool = False) -> str:
        return (await asyncio.to_thread(self.acquire, force_refresh=force_refresh)).token


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
    "discover_tenant",
    "generate_certificate",
    "graph_default_scope",
    "is_microsoft_host",
    "load_certificate",
    "msal_http_client",
    "read_claims",
]
