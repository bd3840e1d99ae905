"""App registrations in Microsoft Entra ID, through Microsoft Graph: the only code that talks
to Microsoft about apps (registering one, its service principal, its certificates, admin
consent to its application permissions) and about their replication to the token service.

``ApplicationsClient`` sends Graph's app-management requests on a ``GraphClient`` (httpx +
orjson, its retries and throttling), with whatever token it is given: an administrator's
delegated token (``Application.ReadWrite.All`` + ``AppRoleAssignment.ReadWrite.All``) while
"Set up for me" registers the app, or the app's own app-only token when it rolls its own
certificate (``addKey`` / ``removeKey`` need no permission then, only a proof of possession
of a current certificate, see ``proof_of_possession``). Failures are
``m365sync.microsoft.errors`` categories: a refusal of the directory is
``DirectoryAccessDenied`` (Microsoft's message says which permission or role is missing), a
refused proof ``ProofRejected``.

``sign_in_when_replicated`` waits out Entra ID's replication: a new app, service principal,
certificate or consent reaches the token service seconds to minutes after Graph created it.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from m365sync.microsoft.auth import AccessToken, AppOnlyAuth, ClientCertificate
from m365sync.microsoft.dates import read_graph_datetime
from m365sync.microsoft.errors import (
    REPLICATION_LAG,
    AppNotFound,
    MicrosoftError,
    ServicePrincipalMissing,
    UnexpectedResponse,
)
from m365sync.microsoft.graph import GraphClient, TokenSource
from m365sync.settings import Settings

__all__ = [
    "GRAPH_APP_ID",
    "MANAGEMENT_SCOPES",
    "PROOF_AUDIENCE",
    "ApplicationsClient",
    "GraphPermissions",
    "KeyCredential",
    "NotReplicatedYet",
    "RegisteredApp",
    "certificate_expiry",
    "proof_of_possession",
    "sign_in_when_replicated",
]

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's app id: the resource of every permission m365sync asks for."""
PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
"""The ``aud`` of a proof of possession, as Microsoft's addKey reference gives it."""
PROOF_LIFETIME = timedelta(minutes=10)
MANAGEMENT_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
"""The delegated permissions that let a signed-in administrator register an app and grant it
application permissions (Global Administrator or Privileged Role Administrator)."""


@dataclass(frozen=True)
class RegisteredApp:
    """An app registration: ``object_id`` addresses it in Graph (and is a proof's ``iss``),
    ``app_id`` is its client ID."""

    object_id: str
    app_id: str
    display_name: str
    key_credentials: tuple[KeyCredential, ...] = ()


@dataclass(frozen=True)
class KeyCredential:
    """A certificate on an app registration (its public part only)."""

    key_id: str
    thumbprint: str  # SHA-1, upper-case hex, as Entra ID shows it
    display_name: str
    ends_at: datetime | None


@dataclass(frozen=True)
class GraphPermissions:
    """Microsoft Graph's service principal in a tenant: its object id (the resource of every
    app role assignment) and the ids of its application permissions, by name."""

    service_principal_id: str
    app_role_ids: dict[str, str]

    def role_id(self, permission: str) -> str:
        try:
            return self.app_role_ids[permission]
        except KeyError:
            raise UnexpectedResponse(
                f"Microsoft Graph publishes no application permission named {permission}."
            ) from None


class NotReplicatedYet(MicrosoftError):
    """Entra ID's token service still didn't know the new app, its credential or its
    consented permissions when the wait ended."""

    status = 409
    retryable = True
    default_message = (
        "Microsoft Entra ID has not finished replicating the new app registration to its "
        "sign-in service yet."
    )
    default_fix = "Nothing is wrong with the app: wait a few minutes and try again."


def _der_base64(certificate_pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def certificate_expiry(certificate_pem: str) -> datetime:
    """When a PEM certificate stops being valid (UTC)."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    return certificate.not_valid_after_utc


def _key_credential_body(certificate: ClientCertificate, display_name: str) -> dict[str, Any]:
    return {
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
        "key": _der_base64(certificate.certificate_pem),
        "displayName": display_name,
    }


def _thumbprint(value: Any) -> str:
    """``customKeyIdentifier``: the SHA-1 thumbprint's bytes, base64 (hex upper-case here)."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        return base64.b64decode(value).hex().upper()
    except ValueError:
        return ""


def _when(value: Any) -> datetime | None:
    try:
        return read_graph_datetime(value)
    except ValueError:
        return None


def _key_credentials(data: dict[str, Any]) -> tuple[KeyCredential, ...]:
    entries = data.get("keyCredentials")
    return tuple(
        KeyCredential(
            key_id=str(entry.get("keyId") or ""),
            thumbprint=_thumbprint(entry.get("customKeyIdentifier")),
            display_name=str(entry.get("displayName") or ""),
            ends_at=_when(entry.get("endDateTime")),
        )
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    )


def _required(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UnexpectedResponse(f"Microsoft Graph's answer to {what} has no {key}.")
    return value


def proof_of_possession(
    application_object_id: str, certificate: ClientCertificate, *, now: datetime | None = None
) -> str:
    """The JWT ``addKey`` and ``removeKey`` require: signed RS256 with the private key of one
    of the app's current certificates (named by ``x5t``), ``aud`` ``PROOF_AUDIENCE``,
    ``iss`` the application's object id, valid for ten minutes from ``now``. Entra ID checks
    it against its own clock, so ``now`` is the wall clock's unless a test says otherwise."""
    issued = now or datetime.now(UTC)
    x5t = base64.urlsafe_b64encode(bytes.fromhex(certificate.thumbprint)).decode().rstrip("=")
    claims = {
        "aud": PROOF_AUDIENCE,
        "iss": application_object_id,
        "nbf": int(issued.timestamp()),
        "iat": int(issued.timestamp()),
        "exp": int((issued + PROOF_LIFETIME).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, certificate.private_key_pem, algorithm="RS256", headers={"x5t": x5t})


class ApplicationsClient:
    """Graph's app-management calls with one token source (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        token_source: TokenSource,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._graph = GraphClient(settings, token_source, transport=transport)

    async def __aenter__(self) -> ApplicationsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._graph.aclose()

    async def graph_permissions(self) -> GraphPermissions:
        """Microsoft Graph's service principal in the tenant, with its app role ids."""
        found = await self._graph.get_json(
            "/servicePrincipals",
            params={"$filter": f"appId eq '{GRAPH_APP_ID}'", "$select": "id,appId,appRoles"},
        )
        values = found.get("value")
        principal = values[0] if isinstance(values, list) and values else None
        if not isinstance(principal, dict):
            raise UnexpectedResponse(
                "Microsoft Graph's service principal is missing from the tenant's directory."
            )
        roles = principal.get("appRoles")
        return GraphPermissions(
            service_principal_id=_required(principal, "id", "the Microsoft Graph lookup"),
            app_role_ids={
                str(role["value"]): str(role["id"])
                for role in (roles if isinstance(roles, list) else [])
                if isinstance(role, dict) and role.get("value") and role.get("id")
            },
        )

    async def register_application(
        self,
        display_name: str,
        *,
        graph: GraphPermissions,
        permissions: Iterable[str],
        certificate: ClientCertificate,
        certificate_name: str,
    ) -> RegisteredApp:
        """A single-tenant app requesting ``permissions`` (Microsoft Graph application
        permissions) with ``certificate`` as its first credential (``addKey`` can't add the
        first one: it needs a proof signed by a current certificate)."""
        body = {
            "displayName": display_name,
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": [
                {
                    "resourceAppId": GRAPH_APP_ID,
                    "resourceAccess": [
                        {"id": graph.role_id(p), "type": "Role"} for p in sorted(set(permissions))
                    ],
                }
            ],
            "keyCredentials": [_key_credential_body(certificate, certificate_name)],
        }
        created = await self._graph.post_json("/applications", body)
        return RegisteredApp(
            object_id=_required(created, "id", "registering the app"),
            app_id=_required(created, "appId", "registering the app"),
            display_name=str(created.get("displayName") or display_name),
            key_credentials=_key_credentials(created),
        )

    async def create_service_principal(self, app_id: str) -> str:
        """The app's service principal (enterprise application) in the tenant; its id."""
        created = await self._graph.post_json("/servicePrincipals", {"appId": app_id})
        return _required(created, "id", "creating the service principal")

    async def grant_application_permission(
        self, service_principal_id: str, graph: GraphPermissions, permission: str
    ) -> str:
        """Admin consent to one Microsoft Graph application permission; the assignment's id."""
        created = await self._graph.post_json(
            f"/servicePrincipals/{graph.service_principal_id}/appRoleAssignedTo",
            {
                "principalId": service_principal_id,
                "resourceId": graph.service_principal_id,
                "appRoleId": graph.role_id(permission),
            },
        )
        return _required(created, "id", "granting a permission")

    async def delete_application(self, object_id: str) -> None:
        """Delete the app registration (its service principal and consent go with it)."""
        await self._graph.delete(f"/applications/{quote(object_id)}")

    async def add_certificate(
        self,
        object_id: str,
        new: ClientCertificate,
        *,
        proof: str,
        display_name: str,
    ) -> KeyCredential:
        """``addKey``: ``new`` joins the app's certificates (``proof`` signed by a current one)."""
        added = await self._graph.post_json(
            f"/applications/{quote(object_id)}/addKey",
            {
                "keyCredential": _key_credential_body(new, display_name),
                "passwordCredential": None,
                "proof": proof,
            },
        )
        keys = _key_credentials({"keyCredentials": [added]})
        if not keys or not keys[0].key_id:
            raise UnexpectedResponse("Microsoft Graph's answer to addKey names no keyId.")
        return keys[0]

    async def remove_certificate(self, object_id: str, key_id: str, *, proof: str) -> None:
        """``removeKey``: the certificate ``key_id`` stops working at once."""
        await self._graph.post_json(
            f"/applications/{quote(object_id)}/removeKey", {"keyId": key_id, "proof": proof}
        )


async def sign_in_when_replicated(
    settings: Settings,
    *,
    client_id: str,
    tenant_id: str,
    certificate: ClientCertificate,
    permissions: Iterable[str] = (),
    timeout_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AccessToken:
    """An app-only token of a newly created app or credential, once Entra ID's token service
    knows the app, its service principal and the certificate (until then it answers as
    ``REPLICATION_LAG`` says) and the token carries every one of ``permissions``.

    Asks again every ``poll_seconds`` for at most ``timeout_seconds``, then raises
    ``NotReplicatedYet`` naming what was still missing. Any other failure is raised at once."""
    wanted = {p.lower() for p in permissions}
    deadline = clock() + timeout_seconds
    while True:
        waiting_for: str
        try:
            auth = AppOnlyAuth(
                settings,
                client_id=client_id,
                tenant_id=tenant_id,
                credential=certificate,
                cache_blob=None,
                on_cache_change=None,
            )
            token = await asyncio.to_thread(auth.acquire, force_refresh=True)
        except REPLICATION_LAG as lag:
            waiting_for = _not_known_yet(lag)
        else:
            missing = sorted(p for p in wanted if p not in {r.lower() for r in token.roles})
            if not missing:
                return token
            waiting_for = (
                "the app's token still lacks consented permissions ("
                + ", ".join(_named(missing, permissions))
                + ")"
            )
        if clock() + poll_seconds > deadline:
            raise NotReplicatedYet(
                f"Microsoft Entra ID has not finished replicating the new app registration "
                f"after {timeout_seconds:.0f} seconds: {waiting_for}."
            )
        await sleep(poll_seconds)


def _not_known_yet(lag: MicrosoftError) -> str:
    if isinstance(lag, AppNotFound):
        what = "the app"
    elif isinstance(lag, ServicePrincipalMissing):
        what = "the app's service principal"
    else:
        what = "the app's certificate"
    return f"its sign-in service doesn't know {what} yet ({lag.code or type(lag).__name__})"


def _named(lowered: list[str], permissions: Iterable[str]) -> list[str]:
    names = {p.lower(): p for p in permissions}
    return [names.get(p, p) for p in lowered]
