"""Seed files: a whole tenant (directory, apps, consent, mailbox contents) in YAML or JSON.

The format is documented in ``docs/m365sim.md`` ("Seed format"). Directory objects are
loaded here; mailbox contents (``mailboxes:``) are handed to the Graph backends through
``MAILBOX_SEEDERS``, keyed by the section name (``messages``, ``events``, ``todo``...).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from m365sim.directory.models import (
    AppRegistration,
    Certificate,
    ClientSecret,
    DelegatedGrant,
    Group,
    Tenant,
    User,
)
from m365sim.state import SimState

MailboxSeeder = Callable[[SimState, Tenant, User, Any], None]
MAILBOX_SEEDERS: dict[str, MailboxSeeder] = {}
"""Section name under ``mailboxes.<address>`` → function loading it. Graph backends register."""

DEMO_SEED = Path(__file__).with_name("seeds") / "demo.yaml"


class SeedError(ValueError):
    """A seed file that can't be loaded; the message names the offending entry."""


def read_seed(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SeedError(f"{path}: a seed is a mapping with a 'tenants' list")
    return data


def _when(value: Any, now: datetime) -> datetime:
    """An absolute ISO date-time, or a relative one: ``{days: 30}`` / ``"+30d"`` / ``"-2d"``."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dict):
        return now + timedelta(**{k: float(v) for k, v in value.items()})
    text = str(value).strip()
    if text[:1] in "+-" and text[-1:] in "dhm":
        unit = {"d": "days", "h": "hours", "m": "minutes"}[text[-1]]
        return now + timedelta(**{unit: float(text[:-1])})
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _load_app(tenant: Tenant, spec: dict[str, Any], now: datetime) -> AppRegistration:
    app = AppRegistration(
        display_name=spec["displayName"],
        tenant_id=tenant.id,
        disabled=bool(spec.get("disabled", False)),
        redirect_uris=list(spec.get("redirectUris", [])),
        application_permissions=set(spec.get("applicationPermissions", [])),
        delegated_permissions=set(spec.get("delegatedPermissions", [])),
    )
    if "appId" in spec:
        app.app_id = str(spec["appId"])
    for secret in spec.get("secrets", []):
        app.secrets.append(
            ClientSecret(
                value=str(secret["value"]),
                key_id=str(secret.get("keyId") or ClientSecret(value="x", expires_at=now).key_id),
                expires_at=_when(secret.get("expires", "+365d"), now),
                display_name=str(secret.get("displayName", "")),
            )
        )
    for cert in spec.get("certificates", []):
        app.certificates.append(Certificate(pem=str(cert["pem"]), display_name=str(cert.get("displayName", ""))))
    tenant.add_app(app)
    principal = tenant.service_principals[app.app_id]
    consent = spec.get("adminConsent", False)
    if consent is True:
        principal.granted_application_permissions = set(app.application_permissions)
        if app.delegated_permissions:
            principal.delegated_grants.append(DelegatedGrant(scopes=set(app.delegated_permissions)))
    elif isinstance(consent, list):
        principal.granted_application_permissions = set(consent)
    return app


def load_seed(state: SimState, data: dict[str, Any]) -> list[Tenant]:
    """Add the seed's tenants to ``state`` (call ``state.reset()`` first to replace)."""
    import m365sim.graph.urls  # noqa: F401  (importing the Graph backends registers their seeders)

    now = state.now()
    loaded: list[Tenant] = []
    for t_index, spec in enumerate(data.get("tenants", [])):
        try:
            tenant = Tenant(display_name=spec["displayName"], domains=[d.lower() for d in spec["domains"]])
        except KeyError as exc:
            raise SeedError(f"tenants[{t_index}] needs {exc.args[0]!r}") from exc
        if "id" in spec:
            tenant.id = str(spec["id"])
        for u_index, u in enumerate(spec.get("users", [])):
            try:
                user = User(
                    user_principal_name=u["userPrincipalName"],
                    display_name=u.get("displayName", u["userPrincipalName"].split("@")[0]),
                    password=str(u.get("password", "Passw0rd!")),
                )
            except KeyError as exc:
                raise SeedError(f"tenants[{t_index}].users[{u_index}] needs {exc.args[0]!r}") from exc
            if "id" in u:
                user.id = str(u["id"])
            user.mail = u.get("mail", user.user_principal_name)
            user.given_name = u.get("givenName")
            user.surname = u.get("surname")
            user.job_title = u.get("jobTitle")
            user.account_enabled = bool(u.get("accountEnabled", True))
            user.is_admin = bool(u.get("isAdmin", False))
            user.licensed = bool(u.get("licensed", True))
            user.mailbox_location = str(u.get("mailboxLocation", "cloud"))
            user.soft_deleted = bool(u.get("softDeleted", False))
            user.mailbox_full = bool(u.get("mailboxFull", False))
            user.time_zone = str(u.get("timeZone", user.time_zone))
            tenant.add_user(user)
        for g in spec.get("groups", []):
            group = Group(display_name=g["displayName"], mail=g.get("mail"))
            if "id" in g:
                group.id = str(g["id"])
            group.mail_enabled = bool(g.get("mailEnabled", True))
            group.security_enabled = bool(g.get("securityEnabled", True))
            for member in g.get("members", []):
                found = tenant.find_user(member)
                if found is None:
                    raise SeedError(f"group {group.display_name!r}: no user {member!r}")
                group.member_ids.add(found.id)
            tenant.add_group(group)
        for app_spec in spec.get("apps", []):
            _load_app(tenant, app_spec, now)
        state.add_tenant(tenant)
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
