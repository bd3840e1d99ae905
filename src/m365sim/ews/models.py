"""The Exchange organization behind a tenant, as EWS sees it: which server flavour answers,
which build it reports, how it authenticates, and who may impersonate whom.

One ``ExchangeOrganization`` per tenant, kept in ``state.extension("ews.organizations")``
(so ``SimState.reset()`` forgets it) and loaded from the tenant's ``exchange:`` seed section
or ``PATCH /_sim/tenants/{tenant}/exchange``. A tenant without one is Exchange Online only.

Flavours:

- ``online`` — Exchange Online. EWS is refused (Microsoft retired EWS in Exchange Online:
  blocked by default from 2026-10-01, switched off for good on 2027-04-01).
- ``onpremises`` — an Exchange Server organization that holds every licensed mailbox of
  the tenant (Graph still serves them too, so one mailbox can be read by either protocol).
- ``hybrid`` — an Exchange Server that holds only the mailboxes whose ``mailboxLocation``
  is ``onprem``; the others are in Exchange Online and answer ``ErrorNonExistentMailbox``.

Builds (``ServerVersionInfo``): Exchange 2016 CU23 (15.1.2507.39), Exchange 2019 CU15
(15.2.1748.24) and Exchange Server Subscription Edition RTM (15.2.2562.17); the schema
version they report is ``V2017_07_11``, as Exchange 2016 CU and later do.

Impersonation is Exchange Server's ``ApplicationImpersonation`` management role, assigned
to an account for the whole organization or within a management scope
(``New-ManagementRoleAssignment -Role ApplicationImpersonation -User svc
-CustomRecipientWriteScope <scope>``); the scopes are the tenant's ``managementScopes``
(``m365sim.graph.policies``). Delegate access to another mailbox uses the tenant's
``mailboxPermissions`` (``Add-MailboxPermission ... -AccessRights FullAccess``), the same
records Graph's ``.Shared`` scopes read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m365sim.directory.models import Tenant, User, new_id
from m365sim.graph.policies.models import policies_for
from m365sim.state import SimState

__all__ = [
    "AUTH_METHODS",
    "BUILDS",
    "FLAVOURS",
    "ExchangeOrganization",
    "ExchangeSettingsError",
    "ImpersonationAssignment",
    "organization_for",
    "organizations",
]

FLAVOURS = ("online", "onpremises", "hybrid")
AUTH_METHODS = ("ntlm", "basic")
BUILDS: dict[str, tuple[int, int, int, int]] = {
    "Exchange2016": (15, 1, 2507, 39),
    "Exchange2019": (15, 2, 1748, 24),
    "ExchangeSE": (15, 2, 2562, 17),
}
"""The Exchange Server versions m365sim plays, with the build each reports."""
SCHEMA_VERSION = "V2017_07_11"
IMPERSONATION_ROLE = "ApplicationImpersonation"


class ExchangeSettingsError(ValueError):
    """Settings that can't be applied; the message names the offending entry."""


@dataclass
class ImpersonationAssignment:
    """``New-ManagementRoleAssignment -Role ApplicationImpersonation -User <account>``."""

    user_id: str
    scope_name: str | None = None  # None: the whole organization
    name: str = ""
    identity: str = field(default_factory=new_id)

    def as_json(self, tenant: Tenant) -> dict[str, Any]:
        user = tenant.users.get(self.user_id)
        return {
            "identity": self.identity,
            "name": self.name,
            "role": IMPERSONATION_ROLE,
            "user": user.user_principal_name if user else self.user_id,
            "customRecipientWriteScope": self.scope_name,
        }


@dataclass
class ExchangeOrganization:
    """What one tenant's Exchange Server looks like from EWS."""

    tenant: Tenant
    state: SimState = field(repr=False)
    flavour: str = "online"
    version: str = "Exchange2019"
    build: tuple[int, int, int, int] = BUILDS["Exchange2019"]
    authentication: tuple[str, ...] = AUTH_METHODS
    netbios_name: str = ""
    impersonation: list[ImpersonationAssignment] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.netbios_name:
            first = self.tenant.domains[0] if self.tenant.domains else "CONTOSO"
            self.netbios_name = first.split(".")[0].upper()[:15]

    @property
    def serves_ews(self) -> bool:
        return self.flavour in ("onpremises", "hybrid")

    def hosts_mailbox(self, user: User) -> bool:
        """Does this server hold ``user``'s mailbox?"""
        if not self.serves_ews or user.soft_deleted or not user.licensed:
            return False
        if self.flavour == "hybrid":
            return user.mailbox_location == "onprem"
        return True

    def server_version(self) -> dict[str, str]:
        major, minor, build, revision = self.build
        return {
            "MajorVersion": str(major),
            "MinorVersion": str(minor),
            "MajorBuildNumber": str(build),
            "MinorBuildNumber": str(revision),
            "Version": SCHEMA_VERSION,
        }

    def find_account(self, name: str, domain: str = "") -> User | None:
        """An account as a Windows sign-in names it: ``DOMAIN\\user``, ``user@domain`` (UPN or
        primary address) or a bare ``user`` (the UPN's local part, as sAMAccountName)."""
        if "\\" in name:
            domain, _, name = name.partition("\\")
        if "@" in name:
            return self.tenant.find_user(name)
        if (
            domain
            and domain.upper() != self.netbios_name.upper()
            and not self.tenant.owns_domain(domain)
        ):
            return None
        lowered = name.lower()
        for user in self.tenant.users.values():
            if user.user_principal_name.lower().split("@")[0] == lowered:
                return user
        return None

    # -- impersonation -----------------------------------------------------------------------
    def may_impersonate(self, account: User, target: User) -> bool:
        policies = policies_for(self.state, self.tenant)
        for assignment in self.impersonation:
            if assignment.user_id != account.id:
                continue
            if assignment.scope_name is None:
                return True
            scope = policies.find_scope(assignment.scope_name)
            if scope is not None and scope.recipient_filter.matches(
                self.tenant, target, policies.attributes(target)
            ):
                return True
        return False

    def add_impersonation(
        self, user_key: str, scope: str | None = None, name: str | None = None
    ) -> ImpersonationAssignment:
        user = self.tenant.find_user(user_key)
        if user is None:
            raise ExchangeSettingsError(
                f"roleAssignments: no user {user_key!r} in tenant {self.tenant.display_name!r}"
            )
        scope_name: str | None = None
        if scope:
            found = policies_for(self.state, self.tenant).find_scope(scope)
            if found is None:
                raise ExchangeSettingsError(
                    f"roleAssignments: no management scope {scope!r}; add it under "
                    "managementScopes first"
                )
            scope_name = found.name
        assignment = ImpersonationAssignment(
            user_id=user.id,
            scope_name=scope_name,
            name=name or f"{IMPERSONATION_ROLE}-{user.user_principal_name}"[:64],
        )
        self.impersonation.append(assignment)
        return assignment

    def remove_impersonation(self, key: str) -> None:
        before = len(self.impersonation)
        user = self.tenant.find_user(key)
        self.impersonation = [
            a
            for a in self.impersonation
            if key not in (a.identity, a.name) and (user is None or a.user_id != user.id)
        ]
        if len(self.impersonation) == before:
            raise ExchangeSettingsError(f"No ApplicationImpersonation assignment {key!r}")

    # -- settings ------------------------------------------------------------------------------
    def apply(self, spec: dict[str, Any]) -> None:
        """Apply an ``exchange:`` seed section or a control API body (unknown keys refused;
        ``roleAssignments``, when given, replaces the assignments)."""
        known = {
            "flavour",
            "version",
            "build",
            "authentication",
            "netbiosName",
            "roleAssignments",
        }
        unknown = set(spec) - known
        if unknown:
            raise ExchangeSettingsError(
                f"exchange: unknown settings {', '.join(sorted(unknown))}; known: "
                + ", ".join(sorted(known))
            )
        if "flavour" in spec:
            flavour = str(spec["flavour"]).lower()
            if flavour not in FLAVOURS:
                raise ExchangeSettingsError(
                    f"exchange.flavour is one of {', '.join(FLAVOURS)}, not {spec['flavour']!r}"
                )
            self.flavour = flavour
        if "version" in spec:
            version = next((v for v in BUILDS if v.lower() == str(spec["version"]).lower()), None)
            if version is None:
                raise ExchangeSettingsError(
                    f"exchange.version is one of {', '.join(BUILDS)}, not {spec['version']!r}"
                )
            self.version = version
            self.build = BUILDS[version]
        if "build" in spec:
            self.build = _parse_build(spec["build"])
        if "authentication" in spec:
            methods = [str(m).lower() for m in spec["authentication"] or []]
            if not methods or any(m not in AUTH_METHODS for m in methods):
                raise ExchangeSettingsError(
                    "exchange.authentication lists one or more of: " + ", ".join(AUTH_METHODS)
                )
            self.authentication = tuple(dict.fromkeys(methods))
        if "netbiosName" in spec:
            self.netbios_name = str(spec["netbiosName"]).upper()[:15]
        if "roleAssignments" in spec:
            self.impersonation = []
        for index, raw in enumerate(spec.get("roleAssignments") or []):
            if not isinstance(raw, dict) or "user" not in raw:
                raise ExchangeSettingsError(f"exchange.roleAssignments[{index}] needs 'user'")
            role = str(raw.get("role", IMPERSONATION_ROLE))
            if role.lower() != IMPERSONATION_ROLE.lower():
                raise ExchangeSettingsError(
                    f"exchange.roleAssignments[{index}]: only the {IMPERSONATION_ROLE} role is "
                    "modelled"
                )
            self.add_impersonation(
                str(raw["user"]), raw.get("customRecipientWriteScope"), raw.get("name")
            )

    def as_json(self) -> dict[str, Any]:
        return {
            "flavour": self.flavour,
            "version": self.version,
            "build": ".".join(str(p) for p in self.build),
            "authentication": list(self.authentication),
            "netbiosName": self.netbios_name,
            "roleAssignments": [a.as_json(self.tenant) for a in self.impersonation],
        }


def _parse_build(raw: Any) -> tuple[int, int, int, int]:
    parts = str(raw).split(".")
    try:
        numbers = [int(p) for p in parts]
    except ValueError as exc:
        raise ExchangeSettingsError(f"exchange.build {raw!r} is not like 15.2.1748.24") from exc
    if len(numbers) != 4:
        raise ExchangeSettingsError(f"exchange.build {raw!r} is not like 15.2.1748.24")
    return numbers[0], numbers[1], numbers[2], numbers[3]


def organizations(state: SimState) -> dict[str, ExchangeOrganization]:
    registry: dict[str, ExchangeOrganization] = state.extension("ews.organizations", dict)
    return registry


def organization_for(state: SimState, tenant: Tenant) -> ExchangeOrganization:
    """The tenant's Exchange organization (Exchange Online only until configured)."""
    registry = organizations(state)
    org = registry.get(tenant.id)
    if org is None or org.tenant is not tenant:
        org = registry[tenant.id] = ExchangeOrganization(tenant=tenant, state=state)
    return org
