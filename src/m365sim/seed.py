"""Seed files: a whole tenant (directory, apps, consent, mailbox contents) in YAML or JSON.

The format is documented in ``docs/m365sim/identity.md`` ("Seed format", the directory part)
and ``docs/m365sim.md``. Directory objects are loaded here; mailbox contents (``mailboxes:``)
are handed to the Graph backends through ``MAILBOX_SEEDERS``, keyed by the section name
(``messages``, ``events``, ``todo``): the one table of mailbox sections, listed here rather
than filled in by importing the backends. The ``*_from_spec`` builders are shared with the
``/_sim/tenants`` control API, so a seed entry and a control API body are the same JSON.
A tenant's ``exchange:`` section (its Exchange Server, served over EWS) is loaded by
``m365sim.ews.control.load_exchange`` (``docs/m365sim/ews.md``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from m365sim.dates import parse_when
from m365sim.directory.models import (
    DIRECTORY_ROLES,
    AppRegistration,
    Certificate,
    ClientSecret,
    DelegatedGrant,
    Group,
    Tenant,
    User,
)
from m365sim.ews.control import load_exchange
from m365sim.ews.models import ExchangeSettingsError
from m365sim.graph.calendar.control import seed_events
from m365sim.graph.mail.control import seed_messages
from m365sim.graph.policies.models import PolicyError
from m365sim.graph.policies.seed import load_policies
from m365sim.graph.todo.control import seed_todo
from m365sim.state import SimState

MailboxSeeder = Callable[[SimState, Tenant, User, Any], None]
MAILBOX_SEEDERS: Mapping[str, MailboxSeeder] = {
    "messages": seed_messages,
    "events": seed_events,
    "todo": seed_todo,
}
"""Section name under ``mailboxes.<address>`` → the Graph backend's function loading it."""

DEMO_SEED = Path(__file__).with_name("seeds") / "demo.yaml"


class SeedError(ValueError):
    """A seed file that can't be loaded; the message names the offending entry."""


def read_seed(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SeedError(f"{path}: a seed is a mapping with a 'tenants' list")
    return data


def secret_from_spec(spec: dict[str, Any], now: datetime) -> ClientSecret:
    """A client secret: ``value`` (generated when absent), ``keyId``, ``expires``,
    ``displayName``."""
    value = str(
        spec.get("value") or f"{secrets.token_urlsafe(3)[:3]}8Q~{secrets.token_urlsafe(30)}"
    )
    secret = ClientSecret(
        value=value,
        expires_at=parse_when(spec.get("expires", spec.get("endDateTime", "+365d")), now),
        display_name=str(spec.get("displayName", "")),
    )
    if spec.get("keyId"):
        secret.key_id = str(spec["keyId"])
    return secret


def certificate_from_spec(spec: dict[str, Any]) -> Certificate:
    """An uploaded certificate: ``pem`` (public certificate), ``displayName``, ``keyId``."""
    certificate = Certificate(pem=str(spec["pem"]), display_name=str(spec.get("displayName", "")))
    if spec.get("keyId"):
        certificate.key_id = str(spec["keyId"])
    try:
        _ = certificate.parsed
    except ValueError as exc:
        raise SeedError(
            f"certificate {certificate.display_name!r} is not a PEM certificate: {exc}"
        ) from exc
    return certificate


def app_from_spec(tenant: Tenant, spec: dict[str, Any], now: datetime) -> AppRegistration:
    """Register an app (and its service principal and consent) in ``tenant``."""
    app = AppRegistration(
        display_name=spec["displayName"],
        tenant_id=tenant.id,
        disabled=bool(spec.get("disabled", False)),
        redirect_uris=list(spec.get("redirectUris", [])),
        application_permissions=set(spec.get("applicationPermissions", [])),
        delegated_permissions=set(spec.get("delegatedPermissions", [])),
        sign_in_audience=str(spec.get("signInAudience", "AzureADMyOrg")),
        allow_public_client=bool(spec.get("allowPublicClient", False)),
    )
    if "appId" in spec:
        app.app_id = str(spec["appId"])
    for secret in spec.get("secrets", []):
        app.secrets.append(secret_from_spec(secret, now))
    for cert in spec.get("certificates", []):
        app.certificates.append(certificate_from_spec(cert))
    tenant.add_app(app)
    principal = tenant.service_principals[app.app_id]
    consent = spec.get("adminConsent", False)
    if consent is True:
        principal.granted_application_permissions = set(app.application_permissions)
        if app.delegated_permissions:
            principal.delegated_grants.append(DelegatedGrant(scopes=set(app.delegated_permissions)))
    elif isinstance(consent, list):
        principal.granted_application_permissions = set(consent)
    for grant in spec.get("delegatedGrants", []):
        user_id = None
        if grant.get("user"):
            user = tenant.find_user(str(grant["user"]))
            if user is None:
                raise SeedError(
                    f"app {app.display_name!r}: delegatedGrants names no user {grant['user']!r}"
                )
            user_id = user.id
        principal.delegated_grants.append(
            DelegatedGrant(scopes=set(grant["scopes"]), user_id=user_id)
        )
    return app


USER_FLAGS: dict[str, tuple[str, type]] = {
    "displayName": ("display_name", str),
    "mail": ("mail", str),
    "givenName": ("given_name", str),
    "surname": ("surname", str),
    "jobTitle": ("job_title", str),
    "password": ("password", str),
    "accountEnabled": ("account_enabled", bool),
    "isAdmin": ("is_admin", bool),
    "licensed": ("licensed", bool),
    "mailboxLocation": ("mailbox_location", str),
    "softDeleted": ("soft_deleted", bool),
    "mailboxFull": ("mailbox_full", bool),
    "timeZone": ("time_zone", str),
    "aliases": ("aliases", list),
    "userPurpose": ("mailbox_kind", str),
    "capacity": ("capacity", int),
}
"""Seed / control API field → ``User`` attribute, with the type each must have."""


def apply_user_fields(user: User, spec: dict[str, Any]) -> None:
    """Set the user fields ``spec`` names (see ``USER_FLAGS``, and ``directoryRoles``: names
    from ``DIRECTORY_ROLES``); a wrong type or an unknown role is a ``SeedError``."""
    for key, value in spec.items():
        if key == "directoryRoles":
            user.directory_roles = _directory_roles(user, value)
            continue
        if key not in USER_FLAGS:
            continue
        attribute, kind = USER_FLAGS[key]
        if value is not None and not isinstance(value, kind):
            raise SeedError(f"user {user.user_principal_name!r}: {key} must be {kind.__name__}")
        if key == "aliases" and not (
            isinstance(value, list) and all(isinstance(a, str) and "@" in a for a in value)
        ):
            raise SeedError(f"user {user.user_principal_name!r}: aliases are email addresses")
        if key == "userPurpose" and value not in ("user", "shared", "room", "equipment"):
            raise SeedError(
                f"user {user.user_principal_name!r}: userPurpose is 'user', 'shared', 'room' "
                "or 'equipment'"
            )
        if key == "mailboxLocation" and value not in ("cloud", "onprem"):
            raise SeedError(
                f"user {user.user_principal_name!r}: mailboxLocation is 'cloud' or 'onprem'"
            )
        setattr(user, attribute, value)


def _directory_roles(user: User, value: Any) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SeedError(
            f"user {user.user_principal_name!r}: directoryRoles must be a list of names"
        )
    unknown = [name for name in value if name not in DIRECTORY_ROLES]
    if unknown:
        raise SeedError(
            f"user {user.user_principal_name!r}: unknown directory role {unknown[0]!r}; "
            f"m365sim knows {', '.join(DIRECTORY_ROLES)}"
        )
    return set(value)


def apply_tenant_fields(tenant: Tenant, spec: dict[str, Any]) -> None:
    """The tenant-wide switches: ``userConsentAllowed``, ``usersCanRegisterApps`` (bool) and
    ``replicationDelaySeconds`` (how long new apps, credentials and consent take to reach the
    token service); a wrong type is a ``SeedError``."""
    for key, attribute in (
        ("userConsentAllowed", "user_consent_allowed"),
        ("usersCanRegisterApps", "users_can_register_apps"),
    ):
        if key in spec:
            if not isinstance(spec[key], bool):
                raise SeedError(f"tenant {tenant.display_name!r}: {key} must be true or false")
            setattr(tenant, attribute, spec[key])
    if "replicationDelaySeconds" in spec:
        delay = spec["replicationDelaySeconds"]
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise SeedError(
                f"tenant {tenant.display_name!r}: replicationDelaySeconds must be a number of "
                "seconds, 0 or more"
            )
        tenant.replication_delay_seconds = float(delay)


def user_from_spec(spec: dict[str, Any]) -> User:
    """A user: ``userPrincipalName`` is required; see ``USER_FLAGS`` for the rest."""
    upn = str(spec["userPrincipalName"])
    user = User(
        user_principal_name=upn,
        display_name=str(spec.get("displayName", upn.split("@")[0])),
        password=str(spec.get("password", "Passw0rd!")),
    )
    if "id" in spec:
        user.id = str(spec["id"])
    user.mail = upn
    apply_user_fields(user, {k: v for k, v in spec.items() if k not in ("displayName", "password")})
    return user


def group_from_spec(tenant: Tenant, spec: dict[str, Any]) -> Group:
    """A group (a mail-enabled security group unless told otherwise); ``members`` are users
    of ``tenant``."""
    group = Group(display_name=spec["displayName"], mail=spec.get("mail"))
    if "id" in spec:
        group.id = str(spec["id"])
    group.mail_enabled = bool(spec.get("mailEnabled", True))
    group.security_enabled = bool(spec.get("securityEnabled", True))
    for member in spec.get("members", []):
        found = tenant.find_user(member)
        if found is None:
            raise SeedError(f"group {group.display_name!r}: no user {member!r}")
        group.member_ids.add(found.id)
    return group


def load_seed(state: SimState, data: dict[str, Any]) -> list[Tenant]:
    """Add the seed's tenants to ``state`` (call ``state.reset()`` first to replace)."""
    now = state.now()
    loaded: list[Tenant] = []
    for t_index, spec in enumerate(data.get("tenants", [])):
        try:
            tenant = Tenant(
                display_name=spec["displayName"], domains=[d.lower() for d in spec["domains"]]
            )
        except KeyError as exc:
            raise SeedError(f"tenants[{t_index}] needs {exc.args[0]!r}") from exc
        if "id" in spec:
            tenant.id = str(spec["id"])
        apply_tenant_fields(tenant, spec)
        for u_index, u in enumerate(spec.get("users", [])):
            try:
                tenant.add_user(user_from_spec(u))
            except KeyError as exc:
                raise SeedError(
                    f"tenants[{t_index}].users[{u_index}] needs {exc.args[0]!r}"
                ) from exc
        for g in spec.get("groups", []):
            tenant.add_group(group_from_spec(tenant, g))
        for app_spec in spec.get("apps", []):
            app_from_spec(tenant, app_spec, now)
        state.add_tenant(tenant)
        try:
            load_policies(state, tenant, spec)
        except PolicyError as exc:
            raise SeedError(f"tenants[{t_index}]: {exc}") from exc
        try:
            load_exchange(state, tenant, spec)
        except ExchangeSettingsError as exc:
            raise SeedError(f"tenants[{t_index}]: {exc}") from exc
        for address, sections in (spec.get("mailboxes") or {}).items():
            owner = tenant.find_user(address)
            if owner is None:
                raise SeedError(f"mailboxes: no user {address!r} in tenant {tenant.display_name!r}")
            for section, content in sections.items():
                seeder = MAILBOX_SEEDERS.get(section)
                if seeder is None:
                    raise SeedError(f"mailboxes.{address}: unknown section {section!r}")
                seeder(state, tenant, owner, content)
        loaded.append(tenant)
    return loaded
