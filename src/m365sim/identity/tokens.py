"""The JWTs m365sim issues and the keys that verify them.

Access tokens for Microsoft Graph are v1.0-shaped, as Entra issues them for Graph even
from the v2.0 endpoint (``iss`` = ``https://sts.windows.net/{tid}/``, ``ver`` "1.0"),
and are exactly what ``m365sim.graph.auth`` validates. ID tokens are v2.0-shaped (``iss`` =
``{origin}/{tid}/v2.0``). Both are RS256 with ``state.signing_key`` and ``kid`` =
``state.signing_kid``, and both verify against the JWKS at ``/{tenant}/discovery/v2.0/keys``.

Difference from Microsoft: real Graph access tokens carry a ``nonce`` header that makes
them unverifiable by anyone but Graph; m365sim's verify with any standard JWT library.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from m365sim.directory.models import AppRegistration, ServicePrincipal, Tenant, User
from m365sim.state import SimState

GRAPH_RESOURCE = "https://graph.microsoft.com"
ACCESS_TOKEN_VERSION = "1.0"

_certificates: dict[str, x509.Certificate] = {}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uint_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def signing_certificate(state: SimState) -> x509.Certificate:
    """A self-signed certificate around the signing key, for the JWKS ``x5c`` member."""
    cert = _certificates.get(state.signing_kid)
    if cert is None:
        key = state.signing_key
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365sim token signing")])
        not_before = datetime(2020, 1, 1).astimezone()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=365 * 30))
            .sign(key, hashes.SHA256())
        )
        _certificates[state.signing_kid] = cert
    return cert


def jwks(state: SimState, issuer: str) -> dict[str, Any]:
    """The JSON Web Key Set: one RS256 signing key, with its certificate (``x5c``)."""
    public = state.signing_key.public_key().public_numbers()
    cert = signing_certificate(state)
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": state.signing_kid,
                "x5t": b64url(hashlib.sha1(der).digest()),  # noqa: S324 - a thumbprint, not security
                "n": _uint_b64(public.n),
                "e": _uint_b64(public.e),
                "x5c": [base64.b64encode(der).decode("ascii")],
                "issuer": issuer,
            }
        ]
    }


def _sign(state: SimState, claims: dict[str, Any]) -> str:
    return jwt.encode(
        claims,
        state.signing_key,
        algorithm="RS256",
        headers={"kid": state.signing_kid, "typ": "JWT"},
    )


def _times(now: datetime, lifetime_seconds: int) -> dict[str, int]:
    issued = int(now.timestamp())
    return {"iat": issued, "nbf": issued, "exp": issued + lifetime_seconds}


def _pairwise_subject(*parts: str) -> str:
    """A stable ``sub`` per (user, app), like Entra's pairwise subject identifiers."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return b64url(digest)[:43]


def mint_app_token(
    state: SimState,
    tenant: Tenant,
    app: AppRegistration,
    principal: ServicePrincipal,
    *,
    authenticated_with_certificate: bool,
) -> str:
    """An app-only Graph token. ``roles`` lists the granted application permissions the token
    service already knows about; with none the claim is absent, as Entra issues it."""
    claims: dict[str, Any] = {
        "aud": GRAPH_RESOURCE,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        **_times(state.now(), state.config.access_token_lifetime_seconds),
        "app_displayname": app.display_name,
        "appid": app.app_id,
        "appidacr": "2" if authenticated_with_certificate else "1",
        "idp": f"https://sts.windows.net/{tenant.id}/",
        "idtyp": "app",
        "oid": principal.id,
        "sub": principal.id,
        "tid": tenant.id,
        "uti": secrets.token_urlsafe(16),
        "ver": ACCESS_TOKEN_VERSION,
    }
    granted = sorted(principal.effective_roles(state.now()))
    if granted:
        claims["roles"] = granted
    return _sign(state, claims)


def mint_user_token(
    state: SimState,
    tenant: Tenant,
    app: AppRegistration,
    user: User,
    scopes: set[str],
    *,
    client_authenticated: str,
) -> str:
    """A delegated Graph token; ``scp`` is the space-separated granted scopes, ``wids`` the
    user's directory role template ids.

    ``client_authenticated`` is ``appidacr``: "0" public client, "1" secret, "2" certificate.
    """
    claims: dict[str, Any] = {
        "aud": GRAPH_RESOURCE,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        **_times(state.now(), state.config.access_token_lifetime_seconds),
        "acct": 0,
        "amr": ["pwd"],
        "app_displayname": app.display_name,
        "appid": app.app_id,
        "appidacr": client_authenticated,
        "idtyp": "user",
        "name": user.display_name,
        "oid": user.id,
        "scp": " ".join(sorted(scopes)),
        "sub": _pairwise_subject(user.id, GRAPH_RESOURCE),
        "tid": tenant.id,
        "unique_name": user.user_principal_name,
        "upn": user.user_principal_name,
        "uti": secrets.token_urlsafe(16),
        "ver": ACCESS_TOKEN_VERSION,
        "wids": user.role_template_ids,
    }
    if user.given_name:
        claims["given_name"] = user.given_name
    if user.surname:
        claims["family_name"] = user.surname
    return _sign(state, claims)


def mint_id_token(
    state: SimState,
    tenant: Tenant,
    app: AppRegistration,
    user: User,
    *,
    issuer: str,
    nonce: str | None,
    include_email: bool,
) -> str:
    """A v2.0 ID token for the client (``aud`` = client id), echoing the request's nonce;
    ``issuer`` is the discovery document's, for the origin the client used."""
    claims: dict[str, Any] = {
        "aud": app.app_id,
        "iss": issuer,
        **_times(state.now(), 3600),
        "name": user.display_name,
        "oid": user.id,
        "preferred_username": user.user_principal_name,
        "rh": "0.A" + secrets.token_urlsafe(8),
        "sub": _pairwise_subject(user.id, app.app_id),
        "tid": tenant.id,
        "uti": secrets.token_urlsafe(16),
        "ver": "2.0",
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if include_email and user.mail:
        claims["email"] = user.mail
    return _sign(state, claims)


def client_info(tenant: Tenant, user: User) -> str:
    """MSAL's account key: base64url of ``{"uid": oid, "utid": tid}``."""
    return b64url(orjson.dumps({"uid": user.id, "utid": tenant.id}))


def opaque_token(prefix: str) -> str:
    """An authorization code or refresh token: opaque to clients, as Microsoft's are."""
    return f"{prefix}.{uuid.uuid4().hex}{secrets.token_urlsafe(48)}"


def pkce_s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


def public_key_of(cert: x509.Certificate) -> rsa.RSAPublicKey | None:
    key = cert.public_key()
    return key if isinstance(key, rsa.RSAPublicKey) else None
