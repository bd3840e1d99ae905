"""Entra ID directory objects as m365sim holds them.

Plain dataclasses: the rules (who may get which token, which mailbox answers) live in
the identity and Graph backends that read these objects. Differences from Entra ID:
one service principal per app, in its home tenant only (a multi-tenant app may use
``/organizations`` and ``/common``, but users of other tenants can't consent to it), the
handful of directory roles app management looks at (``DIRECTORY_ROLES``; ``is_admin`` is
shorthand for Global Administrator), no guest users, Microsoft Graph as the only resource
an app can request permissions on.

Objects created through Graph's app management carry ``visible_at``: the moment Entra's
token service has replicated them (``Tenant.replication_delay_seconds`` after creation).
Until then they exist for Graph but not for sign-in; ``None`` means "always visible", which
is what seeds and the control API create.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's well-known application id (the resource of every Graph token)."""


DIRECTORY_ROLES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Application Developer": "cf1c38e5-3621-4004-a7cb-879624dced7c",
}
"""The directory roles m365sim knows, by display name → role template id (the ``wids`` claim)."""

MEMBER_ROLE_ID = "b79fbf4d-3ef9-4689-8143-76b194e85509"
"""The template id every member user carries in ``wids`` (the default "User" role)."""


def new_id() -> str:
    return str(uuid.uuid4())


def is_visible(visible_at: datetime | None, now: datetime) -> bool:
    """Has the token service caught up with an object replicated at ``visible_at``?"""
    return visible_at is None or now >= visible_at


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class User:
    user_principal_name: str
    display_name: str
    password: str
    id: str = field(default_factory=new_id)
    mail: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    account_enabled: bool = True
    is_admin: bool = False
    # Mailbox state, as Exchange Online sees it.
    licensed: bool = True  # has an Exchange Online licence
    mailbox_location: str = "cloud"  # "cloud" | "onprem" (hybrid: mailbox stays on-premises)
    soft_deleted: bool = False
    mailbox_full: bool = False
    time_zone: str = "Pacific Standard Time"  # mailboxSettings.timeZone (Windows name)
    sessions_revoked_at: datetime | None = None
    directory_roles: set[str] = field(default_factory=set)  # names from DIRECTORY_ROLES
    aliases: list[str] = field(default_factory=list)  # secondary SMTP addresses
    # mailboxSettings.userPurpose: "user", "shared", "room" or "equipment" (resources)
    mailbox_kind: str = "user"
    capacity: int | None = None  # rooms: how many people fit (``/places``)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def proxy_addresses(self) -> list[str]:
        """Graph's ``proxyAddresses``: ``SMTP:`` the primary address, ``smtp:`` each alias."""
        return [
            f"SMTP:{self.mail or self.user_principal_name}",
            *(f"smtp:{a}" for a in self.aliases),
        ]

    @property
    def address(self) -> str:
        return (self.mail or self.user_principal_name).lower()

    @property
    def role_names(self) -> set[str]:
        """The user's directory roles; ``is_admin`` counts as Global Administrator."""
        return self.directory_roles | ({"Global Administrator"} if self.is_admin else set())

    @property
    def role_template_ids(self) -> list[str]:
        """What Entra writes in a user token's ``wids`` claim."""
        return [*sorted(DIRECTORY_ROLES[name] for name in self.role_names), MEMBER_ROLE_ID]


@dataclass
class Group:
    """A group; ``mail_enabled`` + ``security_enabled`` makes a mail-enabled security group."""

    display_name: str
    mail: str | None = None
    id: str = field(default_factory=new_id)
    mail_enabled: bool = True
    security_enabled: bool = True
    member_ids: set[str] = field(default_factory=set)


@dataclass
class ClientSecret:
    """A client secret as the portal shows it once: an ID (``keyId``), a value and an expiry."""

    value: str
    expires_at: datetime
    key_id: str = field(default_factory=new_id)
    display_name: str = ""
    hint: str = ""
    starts_at: datetime | None = None
    visible_at: datetime | None = None  # replicated to the token service (module docstring)

    def __post_init__(self) -> None:
        if not self.hint:
            self.hint = self.value[:3]

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass
class Certificate:
    """An uploaded public certificate (PEM); thumbprints are computed from its DER bytes."""

    pem: str
    key_id: str = field(default_factory=new_id)
    display_name: str = ""
    usage: str = "Verify"  # keyCredential.usage; "Verify" is what signs client assertions
    visible_at: datetime | None = None  # replicated to the token service (module docstring)

    @cached_property
    def parsed(self) -> x509.Certificate:
        """The parsed certificate; a malformed PEM raises ``ValueError``."""
        return x509.load_pem_x509_certificate(self.pem.encode())

    @property
    def sha1_thumbprint(self) -> str:
        """Upper-case hex SHA-1 thumbprint, as the portal's "Thumbprint" column shows it."""
        return self.parsed.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303

    @property
    def sha256_thumbprint(self) -> str:
        return self.parsed.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def x5t(self) -> str:
        """The JOSE ``x5t`` header value that identifies this certificate (RFC 7515 4.1.7)."""
        return _b64url(bytes.fromhex(self.sha1_thumbprint))

    @property
    def x5t_s256(self) -> str:
        """The JOSE ``x5t#S256`` header value (RFC 7515 4.1.8)."""
        return _b64url(bytes.fromhex(self.sha256_thumbprint))

    @property
    def der(self) -> bytes:
        """The certificate's DER bytes: Graph's ``keyCredential.key``, base64-encoded."""
        return self.parsed.public_bytes(serialization.Encoding.DER)

    @property
    def expires_at(self) -> datetime:
        return self.parsed.not_valid_after_utc

    @property
    def starts_at(self) -> datetime:
        return self.parsed.not_valid_before_utc


@dataclass
class AppRegistration:
    display_name: str
    tenant_id: str
    app_id: str = field(default_factory=new_id)  # Application (client) ID
    object_id: str = field(default_factory=new_id)
    sign_in_audience: str = (
        "AzureADMyOrg"  # single tenant; "AzureADMultipleOrgs" allows /organizations
    )
    disabled: bool = False
    # "Allow public client flows": may redeem codes and refresh tokens without a credential.
    allow_public_client: bool = False
    redirect_uris: list[str] = field(default_factory=list)
    # Requested (configured) permissions on Microsoft Graph.
    application_permissions: set[str] = field(default_factory=set)
    delegated_permissions: set[str] = field(default_factory=set)
    secrets: list[ClientSecret] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    # Owners: user ids or service principal ids (an app that created it through Graph).
    owner_ids: set[str] = field(default_factory=set)
    created_at: datetime | None = None
    visible_at: datetime | None = None  # replicated to the token service (module docstring)


@dataclass
class DelegatedGrant:
    """An oauth2PermissionGrant: scopes a user (or, with ``user_id`` None, the admin for all
    users) has consented to for an app."""

    scopes: set[str]
    user_id: str | None = None


@dataclass
class RoleAssignment:
    """The Graph ``appRoleAssignment`` behind one granted application permission."""

    id: str
    created_at: datetime | None = None
    visible_at: datetime | None = None  # replicated to the token service (module docstring)


@dataclass
class ServicePrincipal:
    """The app's enterprise application in its tenant, which holds what was consented.

    ``granted_application_permissions`` is the truth about admin consent (seeds, the control
    API and the consent pages change it); ``role_assignments`` adds, per granted permission,
    the Graph object's id, creation time and replication moment, made on first sight.
    """

    app_id: str
    id: str = field(default_factory=new_id)  # the ``oid`` of app-only tokens
    granted_application_permissions: set[str] = field(default_factory=set)  # admin consent
    delegated_grants: list[DelegatedGrant] = field(default_factory=list)
    role_assignments: dict[str, RoleAssignment] = field(default_factory=dict)
    owner_ids: set[str] = field(default_factory=set)
    created_at: datetime | None = None
    visible_at: datetime | None = None  # replicated to the token service (module docstring)

    def assignment(self, permission: str) -> RoleAssignment:
        """The appRoleAssignment record of a granted permission (made on first sight)."""
        record = self.role_assignments.get(permission)
        if record is None:
            # Entra's ids: the principal's GUID bytes, then 16 bytes of its own.
            record = RoleAssignment(id=_b64url(uuid.UUID(self.id).bytes_le + uuid.uuid4().bytes))
            self.role_assignments[permission] = record
        return record

    def effective_roles(self, now: datetime) -> set[str]:
        """The granted application permissions the token service already knows about."""
        return {
            permission
            for permission in self.granted_application_permissions
            if permission not in self.role_assignments
            or is_visible(self.role_assignments[permission].visible_at, now)
        }

    def delegated_scopes_for(self, user_id: str) -> set[str]:
        scopes: set[str] = set()
        for grant in self.delegated_grants:
            if grant.user_id is None or grant.user_id == user_id:
                scopes |= grant.scopes
        return scopes


@dataclass
class Tenant:
    display_name: str
    domains: list[str]  # verified domains; the first is the default (initial) domain
    id: str = field(default_factory=new_id)
    users: dict[str, User] = field(default_factory=dict)  # by object id
    groups: dict[str, Group] = field(default_factory=dict)
    apps: dict[str, AppRegistration] = field(default_factory=dict)  # by app (client) id
    service_principals: dict[str, ServicePrincipal] = field(default_factory=dict)  # by app id
    # "Users can consent to apps" (Enterprise applications → Consent and permissions).
    user_consent_allowed: bool = True
    # "Users can register applications" (User settings → App registrations).
    users_can_register_apps: bool = True
    # How long a new app, credential or consent takes to reach the token service.
    replication_delay_seconds: float = 0

    @property
    def graph_principal_id(self) -> str:
        """The object id of Microsoft Graph's service principal in this tenant (stable)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/{GRAPH_APP_ID}"))

    def find_user(self, key: str) -> User | None:
        """A user by object id, userPrincipalName or primary SMTP address (case-insensitive)."""
        if key in self.users:
            return self.users[key]
        lowered = key.lower()
        for user in self.users.values():
            if user.user_principal_name.lower() == lowered or user.address == lowered:
                return user
        return None

    def find_group(self, key: str) -> Group | None:
        if key in self.groups:
            return self.groups[key]
        lowered = key.lower()
        for group in self.groups.values():
            if (group.mail or "").lower() == lowered or group.display_name.lower() == lowered:
                return group
        return None

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def add_group(self, group: Group) -> Group:
        self.groups[group.id] = group
        return group

    def add_app(self, app: AppRegistration) -> AppRegistration:
        self.apps[app.app_id] = app
        self.service_principals.setdefault(app.app_id, ServicePrincipal(app_id=app.app_id))
        return app

    def owns_domain(self, domain: str) -> bool:
        return domain.lower() in (d.lower() for d in self.domains)
