"""App management as Microsoft Graph does it: app registrations, their credentials, service
principals, and consent (app role assignments and delegated permission grants).

Everything here changes the tenant's directory (``m365sim.directory.models``), the same
objects the token endpoint reads: a secret from ``addPassword`` or a certificate from
``addKey`` signs in at once (or after ``Tenant.replication_delay_seconds``), an app role
assigned to an app's service principal appears in its next app-only token's ``roles``, and
removing either takes effect for the next token. One ``ApplicationsBackend`` per tenant.

Who may do what, as Graph decides it (a refusal is 403 ``Authorization_RequestDenied``):

- Reading apps and service principals: app-only ``Application.Read.All``,
  ``Application.ReadWrite.All``, ``Application.ReadWrite.OwnedBy``, ``Directory.Read.All``
  or ``Directory.ReadWrite.All``; delegated the same scopes (or
  ``Directory.AccessAsUser.All``) for any member user.
- Creating an app or service principal: app-only ``Application.ReadWrite.All`` or
  ``.OwnedBy`` (the caller becomes owner); delegated ``Application.ReadWrite.All`` (or
  ``Directory.AccessAsUser.All``) and a user who is a Global, Cloud Application or
  Application Administrator, an Application Developer, or any user while the tenant lets
  users register applications (the default). A delegated creator becomes owner.
- Changing or deleting an app or service principal and its secrets: app-only
  ``Application.ReadWrite.All``, or ``.OwnedBy`` on what the caller owns; delegated
  ``Application.ReadWrite.All`` and a user who is an app administrator (as above) or an owner.
- ``addKey`` / ``removeKey``: the same, except that an app rolling its own certificate needs
  no permission at all; every call needs a proof of possession (see ``verify_proof``).
- Granting or revoking an application permission of Microsoft Graph (``appRoleAssignedTo``):
  ``AppRoleAssignment.ReadWrite.All`` plus a permission that reads apps; delegated, a Global
  Administrator or Privileged Role Administrator (Cloud Application and Application
  Administrators may not grant Microsoft Graph's app roles).
- Delegated permission grants (``oauth2PermissionGrants``): app-only
  ``DelegatedPermissionGrant.ReadWrite.All`` or ``Directory.ReadWrite.All``; delegated the
  same scopes (or ``Directory.AccessAsUser.All``) and a Global, Privileged Role, Cloud
  Application or Application Administrator. Reading needs any of those or a read permission.

Differences from Microsoft Graph: Microsoft Graph is the only resource (no other API's
service principal, no custom ``appRoles`` or ``oauth2PermissionScopes`` on apps); app role
assignments go to service principals only (not users or groups); the Graph side is
consistent at once (Entra's Graph also lags behind for a few seconds, only the token service
is delayed here); ``X509CertAndPassword`` / ``Symmetric`` keys and ``passwordCredentials`` on
create/update are refused; properties m365sim doesn't model (``identifierUris``, ``api``,
``tags``, ``notes`` ...) are accepted and ignored.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from m365sim.dates import parse_datetime
from m365sim.directory.graph_permissions import (
    app_role,
    app_role_by_id,
    scope,
    scope_by_id,
)
from m365sim.directory.models import (
    GRAPH_APP_ID,
    AppRegistration,
    Certificate,
    ClientSecret,
    DelegatedGrant,
    RoleAssignment,
    ServicePrincipal,
    Tenant,
    User,
)
from m365sim.graph.applications import exceptions as errors
from m365sim.graph.auth import Caller
from m365sim.identity.permissions import OIDC_SCOPES
from m365sim.identity.tokens import public_key_of
from m365sim.state import SimState

__all__ = [
    "APP_ADMIN_ROLES",
    "PROOF_AUDIENCES",
    "ApplicationsBackend",
    "GraphResource",
    "Principal",
    "applications_backend",
    "grant_id",
]

APP_ADMIN_ROLES = frozenset(
    {"Global Administrator", "Cloud Application Administrator", "Application Administrator"}
)
"""Directory roles that manage every app registration and service principal."""
GRAPH_CONSENT_ROLES = frozenset({"Global Administrator", "Privileged Role Administrator"})
"""Directory roles that may grant Microsoft Graph's application permissions."""
GRANT_ADMIN_ROLES = GRAPH_CONSENT_ROLES | APP_ADMIN_ROLES
"""Directory roles that may grant delegated permissions for the organization."""

READ_APPS = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_APPS_APP_ONLY = READ_APPS | {"Application.ReadWrite.OwnedBy"}
READ_APPS_DELEGATED = READ_APPS | {"Directory.AccessAsUser.All"}
WRITE_APPS_DELEGATED = frozenset({"Application.ReadWrite.All", "Directory.AccessAsUser.All"})
MANAGE_GRANTS = frozenset({"DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"})

PROOF_AUDIENCES = frozenset({"00000002-0000-0000-c000-000000000000", GRAPH_APP_ID})
"""A proof of possession's ``aud``: Microsoft's v1.0 page names Azure AD Graph's app id, its
newer guide Microsoft Graph's; Graph takes both."""
PROOF_LIFETIME = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_SECRET_LIFETIME = timedelta(days=730)  # addPassword: startDateTime + 2 years
SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs")


@dataclass(frozen=True)
class GraphResource:
    """Microsoft Graph's service principal in a tenant: the resource every permission is on."""

    id: str
    app_id: str = GRAPH_APP_ID


Principal = ServicePrincipal | GraphResource


def _guid_bytes(value: str) -> bytes:
    return uuid.UUID(value).bytes_le


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def grant_id(client: ServicePrincipal, resource_id: str, user_id: str | None) -> str:
    """An oAuth2PermissionGrant's id, as Entra builds it: the client's, the resource's and
    (for one user's grant) the user's GUID bytes, base64url."""
    raw = _guid_bytes(client.id) + _guid_bytes(resource_id)
    return _b64url(raw + (_guid_bytes(user_id) if user_id else b""))


def _strings(value: Any, prop: str, resource: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidPropertyValue.of(prop, resource, "Expected a list of strings.")
    return list(value)


def _text(body: Mapping[str, Any], prop: str, resource: str, *, required: bool = False) -> str:
    value = body.get(prop)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise errors.InvalidPropertyValue.of(prop, resource)
    return value


def _when(value: Any, prop: str, resource: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.InvalidPropertyValue.of(prop, resource)
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise errors.InvalidPropertyValue.of(prop, resource) from exc


def _certificate_from_key(value: Any, prop: str) -> x509.Certificate:
    """``keyCredential.key``: base64 of the certificate's DER (or PEM) bytes."""
    if not isinstance(value, str) or not value:
        raise errors.InvalidPropertyValue.of(prop, "KeyCredential", "'key' is required.")
    try:
        raw = base64.b64decode(value, validate=False)
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidPropertyValue.of(
            prop, "KeyCredential", "'key' must be the certificate's bytes, base64-encoded."
        ) from exc


class ApplicationsBackend:
    """Graph's app management over one tenant's directory."""

    def __init__(self, state: SimState, tenant: Tenant) -> None:
        self.state = state
        self.tenant = tenant

    # -- time and replication ---------------------------------------------------------------
    def now(self) -> datetime:
        return self.state.now()

    def replicated_at(self) -> datetime:
        """When something created now reaches the token service."""
        return self.now() + timedelta(seconds=self.tenant.replication_delay_seconds)

    # -- lookups ------------------------------------------------------------------------------
    def application(self, object_id: str) -> AppRegistration:
        for app in self.tenant.apps.values():
            if app.object_id == object_id:
                return app
        raise errors.DirectoryObjectNotFound.named(object_id)

    def application_by_app_id(self, app_id: str) -> AppRegistration:
        app = self.tenant.apps.get(app_id)
        if app is None:
            raise errors.DirectoryObjectNotFound.named(app_id)
        return app

    @property
    def graph(self) -> GraphResource:
        return GraphResource(id=self.tenant.graph_principal_id)

    def service_principals(self) -> Iterator[Principal]:
        """Microsoft Graph's service principal, then the tenant's apps' ones."""
        yield self.graph
        yield from self.tenant.service_principals.values()

    def service_principal(self, sp_id: str) -> Principal:
        for principal in self.service_principals():
            if principal.id == sp_id:
                return principal
        raise errors.DirectoryObjectNotFound.named(sp_id)

    def service_principal_by_app_id(self, app_id: str) -> Principal:
        for principal in self.service_principals():
            if principal.app_id == app_id:
                return principal
        raise errors.DirectoryObjectNotFound.named(app_id)

    def client_principal(self, sp_id: str, prop: str, resource: str) -> ServicePrincipal:
        """A tenant app's service principal named in a body (not Microsoft Graph's)."""
        for principal in self.tenant.service_principals.values():
            if principal.id == sp_id:
                return principal
        raise errors.InvalidPropertyValue.of(
            prop, resource, f"No service principal with id '{sp_id}' in this tenant."
        )

    def app_of(self, principal: ServicePrincipal) -> AppRegistration | None:
        return self.tenant.apps.get(principal.app_id)

    # -- who is calling -------------------------------------------------------------------------
    def _own_principal(self, caller: Caller) -> ServicePrincipal | None:
        return self.tenant.service_principals.get(caller.app_id) if caller.app_only else None

    def _caller_ids(self, caller: Caller) -> set[str]:
        """The ids that count as the caller when ownership is checked."""
        if caller.user is not None:
            return {caller.user.id}
        own = self._own_principal(caller)
        return {own.id} if own is not None else set()

    @staticmethod
    def _user_roles(caller: Caller) -> set[str]:
        return caller.user.role_names if caller.user is not None else set()

    @staticmethod
    def _deny(why: str) -> errors.InsufficientPrivileges:
        return errors.InsufficientPrivileges(
            f"Insufficient privileges to complete the operation. {why}"
        )

    def require_read(self, caller: Caller) -> None:
        granted = (
            caller.roles & READ_APPS_APP_ONLY
            if caller.app_only
            else caller.scopes & READ_APPS_DELEGATED
        )
        if not granted:
            raise self._deny(
                "Reading applications and service principals needs Application.Read.All "
                "(or Application.ReadWrite.All, Directory.Read.All)."
            )

    def require_create(self, caller: Caller) -> None:
        if caller.app_only:
            if not caller.roles & {"Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}:
                raise self._deny(
                    "Creating applications needs the application permission "
                    "Application.ReadWrite.OwnedBy or Application.ReadWrite.All."
                )
            return
        if not caller.scopes & WRITE_APPS_DELEGATED:
            raise self._deny(
                "Creating applications needs the delegated permission Application.ReadWrite.All."
            )
        roles = self._user_roles(caller)
        if (
            roles & (APP_ADMIN_ROLES | {"Application Developer"})
            or self.tenant.users_can_register_apps
        ):
            return
        raise self._deny(
            "Users may not register applications in this tenant: the signed-in user needs the "
            "Application Developer, Application Administrator, Cloud Application Administrator "
            "or Global Administrator role."
        )

    def require_manage(self, caller: Caller, owner_ids: set[str]) -> None:
        """May the caller change an app or service principal owned by ``owner_ids``?"""
        owns = bool(self._caller_ids(caller) & owner_ids)
        if caller.app_only:
            if "Application.ReadWrite.All" in caller.roles:
                return
            if "Application.ReadWrite.OwnedBy" in caller.roles and owns:
                return
            raise self._deny(
                "Changing this application needs the application permission "
                "Application.ReadWrite.All, or Application.ReadWrite.OwnedBy on an application "
                "the calling app owns."
            )
        if not caller.scopes & WRITE_APPS_DELEGATED:
            raise self._deny(
                "Changing applications needs the delegated permission Application.ReadWrite.All."
            )
        if self._user_roles(caller) & APP_ADMIN_ROLES or owns:
            return
        raise self._deny(
            "The signed-in user is neither an owner of this application nor an Application "
            "Administrator, Cloud Application Administrator or Global Administrator."
        )

    def require_key_roll(self, caller: Caller, app: AppRegistration) -> None:
        """addKey / removeKey: an app may roll its own keys without any permission."""
        if caller.app_only and caller.app_id == app.app_id:
            return
        self.require_manage(caller, app.owner_ids)

    def require_app_role_grant(self, caller: Caller) -> None:
        """Granting or revoking Microsoft Graph's application permissions."""
        wanted = "AppRoleAssignment.ReadWrite.All"
        readable = READ_APPS_APP_ONLY if caller.app_only else READ_APPS_DELEGATED
        held = caller.roles if caller.app_only else caller.scopes
        if wanted not in held or not held & readable:
            kind = "application" if caller.app_only else "delegated"
            raise self._deny(
                f"Granting application permissions needs the {kind} permissions "
                "AppRoleAssignment.ReadWrite.All and Application.Read.All (or "
                "Application.ReadWrite.All)."
            )
        if not caller.app_only and not self._user_roles(caller) & GRAPH_CONSENT_ROLES:
            raise self._deny(
                "Only a Global Administrator or Privileged Role Administrator may grant or revoke "
                "Microsoft Graph's application permissions; the signed-in user is neither."
            )

    def require_read_assignments(self, caller: Caller) -> None:
        held = caller.roles if caller.app_only else caller.scopes
        if "AppRoleAssignment.ReadWrite.All" in held:
            return
        self.require_read(caller)

    def require_manage_grants(self, caller: Caller) -> None:
        if caller.app_only:
            if not caller.roles & MANAGE_GRANTS:
                raise self._deny(
                    "Managing delegated permission grants needs the application permission "
                    "DelegatedPermissionGrant.ReadWrite.All."
                )
            return
        if not caller.scopes & (MANAGE_GRANTS | {"Directory.AccessAsUser.All"}):
            raise self._deny(
                "Managing delegated permission grants needs the delegated permission "
                "DelegatedPermissionGrant.ReadWrite.All."
            )
        if not self._user_roles(caller) & GRANT_ADMIN_ROLES:
            raise self._deny(
                "Only a Global, Privileged Role, Cloud Application or Application Administrator "
                "may grant delegated permissions; the signed-in user is none of these."
            )

    def require_read_grants(self, caller: Caller) -> None:
        held = caller.roles if caller.app_only else caller.scopes
        if held & (MANAGE_GRANTS | {"Directory.Read.All"}):
            return
        self.require_read(caller)

    # -- applications ------------------------------------------------------------------------
    def create_application(self, caller: Caller, body: Mapping[str, Any]) -> AppRegistration:
        self.require_create(caller)
        if "appId" in body:
            raise errors.InvalidPropertyValue.of("appId", "Application", "appId is read-only.")
        now = self.now()
        app = AppRegistration(
            display_name=_text(body, "displayName", "Application", required=True),
            tenant_id=self.tenant.id,
            created_at=now,
            visible_at=self.replicated_at(),
            owner_ids=self._caller_ids(caller),
        )
        self._apply(app, body, creating=True)
        self.tenant.apps[app.app_id] = app  # no service principal until POST /servicePrincipals
        return app

    def update_application(
        self, caller: Caller, app: AppRegistration, body: Mapping[str, Any]
    ) -> None:
        self.require_manage(caller, app.owner_ids)
        if "displayName" in body:
            app.display_name = _text(body, "displayName", "Application", required=True)
        self._apply(app, body, creating=False)

    def _apply(self, app: AppRegistration, body: Mapping[str, Any], *, creating: bool) -> None:
        """The writable properties m365sim models; ``displayName`` is handled by the caller."""
        if "signInAudience" in body:
            audience = body["signInAudience"]
            if audience not in SIGN_IN_AUDIENCES:
                raise errors.InvalidPropertyValue.of(
                    "signInAudience",
                    "Application",
                    f"m365sim supports {' and '.join(SIGN_IN_AUDIENCES)} (work or school "
                    "accounts only).",
                )
            app.sign_in_audience = audience
        if "isFallbackPublicClient" in body:
            value = body["isFallbackPublicClient"]
            if value is not None and not isinstance(value, bool):
                raise errors.InvalidPropertyValue.of("isFallbackPublicClient", "Application")
            app.allow_public_client = bool(value)
        web = body.get("web")
        if isinstance(web, Mapping) and "redirectUris" in web:
            app.redirect_uris = _strings(web["redirectUris"], "web.redirectUris", "Application")
        if "requiredResourceAccess" in body:
            self._set_required_access(app, body["requiredResourceAccess"])
        if body.get("passwordCredentials"):
            raise errors.DirectoryBadRequest(
                "Adding passwordCredentials when creating or updating an application is not "
                "supported. Use the addPassword method to add a secret."
            )
        if "keyCredentials" in body and (body["keyCredentials"] or not creating):
            self._set_key_credentials(app, body["keyCredentials"])

    def _set_required_access(self, app: AppRegistration, value: Any) -> None:
        if not isinstance(value, list):
            raise errors.InvalidPropertyValue.of("requiredResourceAccess", "Application")
        application: set[str] = set()
        delegated: set[str] = set()
        for entry in value:
            if not isinstance(entry, Mapping):
                raise errors.InvalidPropertyValue.of("requiredResourceAccess", "Application")
            if str(entry.get("resourceAppId", "")).lower() != GRAPH_APP_ID:
                raise errors.InvalidPropertyValue.of(
                    "requiredResourceAccess.resourceAppId",
                    "Application",
                    f"m365sim knows one resource, Microsoft Graph ({GRAPH_APP_ID}); "
                    f"got '{entry.get('resourceAppId')}'.",
                )
            for access in entry.get("resourceAccess") or []:
                if not isinstance(access, Mapping):
                    raise errors.InvalidPropertyValue.of("resourceAccess", "RequiredResourceAccess")
                kind, permission_id = access.get("type"), str(access.get("id", ""))
                if kind == "Role" and (found := app_role_by_id(permission_id)) is not None:
                    application.add(found.value)
                elif kind == "Scope" and (found := scope_by_id(permission_id)) is not None:
                    delegated.add(found.value)
                else:
                    raise errors.InvalidPropertyValue.of(
                        "resourceAccess",
                        "RequiredResourceAccess",
                        f"Microsoft Graph publishes no {'app role' if kind == 'Role' else 'scope'} "
                        f"with id '{permission_id}' (type must be 'Role' or 'Scope').",
                    )
        app.application_permissions = application
        app.delegated_permissions = delegated

    def _set_key_credentials(self, app: AppRegistration, value: Any) -> None:
        """``keyCredentials`` replaced as a whole; an entry without ``key`` keeps the existing
        certificate with that ``keyId``."""
        if not isinstance(value, list):
            raise errors.InvalidPropertyValue.of("keyCredentials", "Application")
        kept: list[Certificate] = []
        existing = {c.key_id: c for c in app.certificates}
        for entry in value:
            if not isinstance(entry, Mapping):
                raise errors.InvalidPropertyValue.of("keyCredentials", "Application")
            key_id = str(entry.get("keyId") or "")
            if not entry.get("key") and key_id in existing:
                kept.append(existing[key_id])
                continue
            kept.append(self._new_certificate(entry, "keyCredentials"))
        app.certificates = kept

    def _new_certificate(self, entry: Mapping[str, Any], prop: str) -> Certificate:
        kind, usage = entry.get("type"), entry.get("usage")
        if kind != "AsymmetricX509Cert" or usage != "Verify":
            raise errors.InvalidPropertyValue.of(
                f"{prop}.type",
                "KeyCredential",
                "m365sim supports certificates for signing in: type 'AsymmetricX509Cert' with "
                "usage 'Verify'.",
            )
        parsed = _certificate_from_key(entry.get("key"), f"{prop}.key")
        if parsed.not_valid_after_utc <= self.now():
            raise errors.InvalidPropertyValue.of(
                f"{prop}.key", "KeyCredential", "The certificate has expired."
            )
        certificate = Certificate(
            pem=parsed.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            display_name=str(entry.get("displayName") or ""),
            visible_at=self.replicated_at(),
        )
        if entry.get("keyId"):
            certificate.key_id = str(entry["keyId"])
        return certificate

    def delete_application(self, caller: Caller, app: AppRegistration) -> None:
        """Deleting a registration removes its service principal (and so its consent) too."""
        self.require_manage(caller, app.owner_ids)
        del self.tenant.apps[app.app_id]
        self.tenant.service_principals.pop(app.app_id, None)

    def add_password(
        self, caller: Caller, app: AppRegistration, body: Mapping[str, Any]
    ) -> ClientSecret:
        self.require_manage(caller, app.owner_ids)
        spec = body.get("passwordCredential") or {}
        if not isinstance(spec, Mapping):
            raise errors.InvalidPropertyValue.of("passwordCredential", "Application")
        start = (
            _when(spec.get("startDateTime"), "startDateTime", "PasswordCredential") or self.now()
        )
        end = _when(spec.get("endDateTime"), "endDateTime", "PasswordCredential")
        if end is not None and end <= start:
            raise errors.InvalidPropertyValue.of(
                "endDateTime", "PasswordCredential", "It must be after startDateTime."
            )
        value = f"{secrets.token_urlsafe(3)[:3]}8Q~{secrets.token_urlsafe(30)[:34]}"
        secret = ClientSecret(
            value=value,
            expires_at=end or start + DEFAULT_SECRET_LIFETIME,
            display_name=_text(spec, "displayName", "PasswordCredential"),
            starts_at=start,
            visible_at=self.replicated_at(),
        )
        app.secrets.append(secret)
        return secret

    def remove_password(
        self, caller: Caller, app: AppRegistration, body: Mapping[str, Any]
    ) -> None:
        self.require_manage(caller, app.owner_ids)
        key_id = str(body.get("keyId") or "")
        kept = [s for s in app.secrets if s.key_id.lower() != key_id.lower()]
        if not key_id or len(kept) == len(app.secrets):
            raise errors.InvalidPropertyValue.of(
                "keyId", "PasswordCredential", f"No password credential with keyId '{key_id}'."
            )
        app.secrets = kept

    def add_key(self, caller: Caller, app: AppRegistration, body: Mapping[str, Any]) -> Certificate:
        self.require_key_roll(caller, app)
        self.verify_proof(app, body.get("proof"))
        entry = body.get("keyCredential")
        if not isinstance(entry, Mapping):
            raise errors.InvalidPropertyValue.of("keyCredential", "Application", "It is required.")
        if body.get("passwordCredential"):
            raise errors.InvalidPropertyValue.of(
                "passwordCredential",
                "Application",
                "m365sim supports AsymmetricX509Cert keys only; send passwordCredential null.",
            )
        certificate = self._new_certificate(entry, "keyCredential")
        if any(c.sha1_thumbprint == certificate.sha1_thumbprint for c in app.certificates):
            raise errors.DirectoryBadRequest(
                "The certificate is already a key credential of this application."
            )
        app.certificates.append(certificate)
        return certificate

    def remove_key(self, caller: Caller, app: AppRegistration, body: Mapping[str, Any]) -> None:
        self.require_key_roll(caller, app)
        self.verify_proof(app, body.get("proof"))
        key_id = str(body.get("keyId") or "")
        kept = [c for c in app.certificates if c.key_id.lower() != key_id.lower()]
        if not key_id or len(kept) == len(app.certificates):
            raise errors.InvalidPropertyValue.of(
                "keyId", "KeyCredential", f"No key credential with keyId '{key_id}'."
            )
        app.certificates = kept

    def verify_proof(self, app: AppRegistration, proof: Any) -> None:
        """The proof of possession ``addKey`` / ``removeKey`` require: a JWT signed (RS256 or
        PS256) with the private key of one of the app's currently valid certificates, ``aud``
        ``00000002-0000-0000-c000-000000000000`` (or Microsoft Graph's app id), ``iss`` the
        application's object id, and ``nbf`` / ``exp`` at most ten minutes apart around now."""
        if not isinstance(proof, str) or not proof:
            raise self._deny(
                "addKey and removeKey need a proof of possession of one of the application's "
                "current certificates."
            )
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError as exc:
            raise errors.ProofInvalid("Access Token missing or malformed.") from exc
        now = self.now()
        valid = [c for c in app.certificates if c.starts_at <= now < c.expires_at]
        if not valid:
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The application has no valid certificate to "
                "verify the proof with: add the first one by updating the application's "
                "keyCredentials."
            )
        x5t = str(header.get("x5t") or "").rstrip("=")
        named = [c for c in valid if x5t and c.x5t == x5t]
        algorithm = str(header.get("alg", ""))
        claims: dict[str, Any] | None = None
        if algorithm in ("RS256", "PS256"):
            for certificate in named or valid:
                key = public_key_of(certificate.parsed)
                if key is None:
                    continue
                try:
                    claims = jwt.decode(
                        proof,
                        key=key,
                        algorithms=[algorithm],
                        options={
                            "verify_aud": False,
                            "verify_exp": False,
                            "verify_nbf": False,
                            "verify_iat": False,
                        },
                    )
                    break
                except jwt.PyJWTError:
                    continue
        if claims is None:
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The proof is not signed (RS256) with the "
                "private key of any of the application's valid certificates."
            )
        if claims.get("aud") not in PROOF_AUDIENCES:
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The proof's 'aud' must be "
                "'00000002-0000-0000-c000-000000000000'."
            )
        if str(claims.get("iss", "")).lower() != app.object_id.lower():
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The proof's 'iss' must be the application's "
                f"object id '{app.object_id}' (its id, not its appId)."
            )
        not_before, expires = claims.get("nbf"), claims.get("exp")
        if not isinstance(not_before, int | float) or not isinstance(expires, int | float):
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The proof needs 'nbf' and 'exp' claims."
            )
        if expires - not_before > PROOF_LIFETIME.total_seconds():
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The proof's lifetime (exp - nbf) must not "
                "exceed 10 minutes."
            )
        stamp = now.timestamp()
        skew = CLOCK_SKEW.total_seconds()
        if not_before > stamp + skew or expires < stamp - skew:
            raise errors.ProofInvalid(
                "Access Token missing or malformed. The proof is not valid at this time "
                "(check 'nbf' and 'exp')."
            )

    # -- service principals ------------------------------------------------------------------
    def create_service_principal(self, caller: Caller, body: Mapping[str, Any]) -> ServicePrincipal:
        app_id = _text(body, "appId", "ServicePrincipal", required=True)
        if app_id.lower() == GRAPH_APP_ID or app_id in self.tenant.service_principals:
            raise errors.ObjectConflict(
                "The service principal cannot be created, updated, or restored because the "
                f"service principal name {app_id} is already in use."
            )
        app = self.tenant.apps.get(app_id)
        if app is None:
            raise errors.InvalidPropertyValue.of(
                "appId",
                "ServicePrincipal",
                f"The appId '{app_id}' of the service principal does not reference a valid "
                "application object.",
            )
        self.require_create(caller)
        self.require_manage(caller, app.owner_ids)
        principal = ServicePrincipal(
            app_id=app.app_id,
            created_at=self.now(),
            visible_at=self.replicated_at(),
            owner_ids=self._caller_ids(caller),
        )
        self.tenant.service_principals[app.app_id] = principal
        return principal

    def delete_service_principal(self, caller: Caller, principal: Principal) -> None:
        if isinstance(principal, GraphResource):
            raise self._deny("Microsoft Graph's service principal cannot be deleted here.")
        app = self.app_of(principal)
        self.require_manage(caller, principal.owner_ids | (app.owner_ids if app else set()))
        self.tenant.service_principals.pop(principal.app_id, None)

    # -- app role assignments (application permissions) --------------------------------------
    def assignments(
        self, principal: Principal
    ) -> list[tuple[ServicePrincipal, str, RoleAssignment]]:
        """(client service principal, permission, record) granted to ``principal``, or, for
        Microsoft Graph's, granted on it."""
        clients = (
            list(self.tenant.service_principals.values())
            if isinstance(principal, GraphResource)
            else [principal]
        )
        found = []
        now = self.now()
        for client in clients:
            for permission in sorted(client.granted_application_permissions):
                if app_role(permission) is None:
                    continue  # a permission m365sim's Graph does not publish
                record = client.assignment(permission)
                if record.created_at is None:
                    record.created_at = now
                found.append((client, permission, record))
        return found

    def assign(
        self, caller: Caller, path_principal: Principal, body: Mapping[str, Any], *, via: str
    ) -> tuple[ServicePrincipal, str, RoleAssignment]:
        """``POST .../appRoleAssignedTo`` (path = the resource) or ``.../appRoleAssignments``
        (path = the client): admin consent to one of Microsoft Graph's app roles."""
        self.require_app_role_grant(caller)
        principal_id = _text(body, "principalId", "AppRoleAssignment", required=True)
        resource_id = _text(body, "resourceId", "AppRoleAssignment", required=True)
        role_id = _text(body, "appRoleId", "AppRoleAssignment", required=True)
        expected = resource_id if via == "appRoleAssignedTo" else principal_id
        if expected.lower() != path_principal.id.lower():
            raise errors.DirectoryBadRequest(
                f"The {'resourceId' if via == 'appRoleAssignedTo' else 'principalId'} in the "
                "body must be the id of the service principal in the request's path."
            )
        if resource_id.lower() != self.graph.id:
            resource = self.service_principal(resource_id)
            raise errors.PermissionNotFoundOnResource(
                f"Permission being assigned was not found on application '{resource.app_id}'."
            )
        client = self.client_principal(principal_id, "principalId", "AppRoleAssignment")
        permission = app_role_by_id(role_id)
        if permission is None:
            raise errors.PermissionNotFoundOnResource(
                f"Permission being assigned was not found on application '{GRAPH_APP_ID}'."
            )
        if permission.value in client.granted_application_permissions:
            raise errors.PermissionAlreadyAssigned()
        client.granted_application_permissions.add(permission.value)
        record = client.assignment(permission.value)
        record.created_at, record.visible_at = self.now(), self.replicated_at()
        return client, permission.value, record

    def unassign(self, caller: Caller, path_principal: Principal, assignment_id: str) -> None:
        self.require_app_role_grant(caller)
        for client, permission, record in self.assignments(path_principal):
            if record.id == assignment_id:
                client.granted_application_permissions.discard(permission)
                client.role_assignments.pop(permission, None)
                return
        raise errors.DirectoryObjectNotFound.named(assignment_id)

    # -- delegated permission grants ---------------------------------------------------------
    def grants(self) -> list[tuple[ServicePrincipal, DelegatedGrant]]:
        return [
            (client, grant)
            for client in self.tenant.service_principals.values()
            for grant in client.delegated_grants
            if grant.scopes
        ]

    def grant(self, key: str) -> tuple[ServicePrincipal, DelegatedGrant]:
        for client, grant in self.grants():
            if grant_id(client, self.graph.id, grant.user_id) == key:
                return client, grant
        raise errors.DirectoryObjectNotFound.named(key)

    def _scopes(self, value: Any) -> set[str]:
        if not isinstance(value, str):
            raise errors.InvalidPropertyValue.of("scope", "OAuth2PermissionGrant")
        names = set(value.split())
        unknown = sorted(n for n in names if scope(n) is None and n not in OIDC_SCOPES)
        if unknown:
            raise errors.InvalidPropertyValue.of(
                "scope",
                "OAuth2PermissionGrant",
                f"Microsoft Graph publishes no delegated permission '{unknown[0]}'.",
            )
        return names

    def create_grant(
        self, caller: Caller, body: Mapping[str, Any]
    ) -> tuple[ServicePrincipal, DelegatedGrant]:
        self.require_manage_grants(caller)
        client = self.client_principal(
            _text(body, "clientId", "OAuth2PermissionGrant", required=True),
            "clientId",
            "OAuth2PermissionGrant",
        )
        resource_id = _text(body, "resourceId", "OAuth2PermissionGrant", required=True)
        if resource_id.lower() != self.graph.id:
            raise errors.InvalidPropertyValue.of(
                "resourceId",
                "OAuth2PermissionGrant",
                "m365sim's only resource is Microsoft Graph's service principal "
                f"('{self.graph.id}' in this tenant).",
            )
        consent_type = body.get("consentType")
        user: User | None = None
        if consent_type == "Principal":
            user = self.tenant.users.get(str(body.get("principalId") or ""))
            if user is None:
                raise errors.InvalidPropertyValue.of(
                    "principalId", "OAuth2PermissionGrant", "It must be a user's id."
                )
        elif consent_type != "AllPrincipals":
            raise errors.InvalidPropertyValue.of(
                "consentType", "OAuth2PermissionGrant", "Use 'AllPrincipals' or 'Principal'."
            )
        scopes = self._scopes(body.get("scope"))
        user_id = user.id if user else None
        if any(g.user_id == user_id and g.scopes for g in client.delegated_grants):
            raise errors.ObjectConflict("Permission entry already exists.")
        grant = DelegatedGrant(scopes=scopes, user_id=user_id)
        client.delegated_grants = [g for g in client.delegated_grants if g.user_id != user_id]
        client.delegated_grants.append(grant)
        return client, grant

    def update_grant(self, caller: Caller, key: str, body: Mapping[str, Any]) -> None:
        self.require_manage_grants(caller)
        _, grant = self.grant(key)
        if "scope" in body:
            grant.scopes = self._scopes(body["scope"])

    def delete_grant(self, caller: Caller, key: str) -> None:
        self.require_manage_grants(caller)
        client, grant = self.grant(key)
        client.delegated_grants.remove(grant)


def applications_backend(state: SimState, tenant: Tenant) -> ApplicationsBackend:
    """The tenant's app-management backend (stateless beyond the directory it changes)."""
    backends: dict[str, ApplicationsBackend] = state.extension("applications", dict)
    backend = backends.get(tenant.id)
    if backend is None or backend.tenant is not tenant:
        backend = backends[tenant.id] = ApplicationsBackend(state, tenant)
    return backend
