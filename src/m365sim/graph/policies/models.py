"""Exchange Online's mailbox-level authorization for apps: Application Access Policies,
RBAC for Applications, and (for delegated access) mailbox permissions.

One ``TenantPolicies`` per tenant, kept in ``state.extension("policies", ...)`` and so
emptied by ``SimState.reset()``. The rules, as Microsoft documents them:

- **Application Access Policies** (``New-ApplicationAccessPolicy``) constrain only what
  an app was granted in Microsoft Entra ID (the token's ``roles``). For one app and one
  target mailbox, in this order: a matching DenyAccess policy denies; a matching
  RestrictAccess policy grants; a RestrictAccess policy for the app that does not match
  the mailbox denies; otherwise access is granted. The scope is a mail-enabled security
  group (nested groups count) or a single mailbox; other groups are refused.
- **RBAC for Applications** (``New-ManagementRoleAssignment -App ... -Role "Application
  Mail.Read" [-CustomResourceScope ...]``) grants a permission within a management scope,
  independently of Entra consent: the effective permission is the union of the Entra
  grant (as constrained by policies) and the RBAC grants in scope. Application Access
  Policies do not constrain RBAC grants.
- **Mailbox permissions** (``Add-MailboxPermission``) let a signed-in user reach another
  user's mailbox with the ``.Shared`` delegated scopes.

**Propagation.** Exchange caches these settings: "changes to application access policies
can take longer than 1 hour to take effect in Microsoft Graph REST API calls, even when
Test-ApplicationAccessPolicy shows positive results", and RBAC for Applications changes take
30 minutes to 2 hours. So a change to access policies, management scopes or role
assignments (``record_change``) reaches Graph only ``SimConfig.policy_propagation_seconds``
later (default 3600, on the simulator's clock): ``enforced(now)`` is what Graph evaluates,
the settings as they were at the newest change that has propagated. The control API's
``Get-*`` and ``Test-*`` cmdlets see the configured settings at once, as the real cmdlets
do. A seed applies at once (it describes a tenant that already exists); tests that check
policy semantics set ``policy_propagation_seconds`` to 0 or move the clock.

Differences from Exchange Online: the delay is one fixed number (Exchange's varies with the
app's recent use); mailbox permissions and group membership changes apply at once;
policies are not limited in number; administrative-unit scopes, exclusive scopes and
``New-ServicePrincipal`` pointers are not modelled (a role assignment names the Entra
service principal directly).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from m365sim.directory.models import Group, Tenant, User, new_id
from m365sim.graph.policies.filters import (
    FilterSyntaxError,
    RecipientFilter,
    compile_filter,
    find_group_by_reference,
    is_member,
)
from m365sim.state import SimState

__all__ = [
    "APPLICATION_ROLES",
    "AccessPolicy",
    "MailboxPermission",
    "ManagementScope",
    "PolicyError",
    "RoleAssignment",
    "TenantPolicies",
    "policies_for",
]

AccessRight = Literal["RestrictAccess", "DenyAccess"]

APPLICATION_ROLES: dict[str, frozenset[str]] = {
    "Application Mail.Read": frozenset({"Mail.Read"}),
    "Application Mail.ReadBasic": frozenset({"Mail.ReadBasic"}),
    "Application Mail.ReadWrite": frozenset({"Mail.ReadWrite"}),
    "Application Mail.Send": frozenset({"Mail.Send"}),
    "Application Mail Full Access": frozenset({"Mail.ReadWrite", "Mail.Send"}),
    "Application Calendars.Read": frozenset({"Calendars.Read"}),
    "Application Calendars.ReadWrite": frozenset({"Calendars.ReadWrite"}),
    "Application Contacts.Read": frozenset({"Contacts.Read"}),
    "Application Contacts.ReadWrite": frozenset({"Contacts.ReadWrite"}),
    "Application MailboxSettings.Read": frozenset({"MailboxSettings.Read"}),
    "Application MailboxSettings.ReadWrite": frozenset({"MailboxSettings.ReadWrite"}),
    "Application Exchange Full Access": frozenset(
        {
            "Mail.ReadWrite",
            "Mail.Send",
            "Calendars.ReadWrite",
            "Contacts.ReadWrite",
            "MailboxSettings.ReadWrite",
        }
    ),
}
"""The Exchange application roles m365sim knows, and the Graph permissions each grants."""

MAILBOX_ACCESS_RIGHTS = ("FullAccess", "ReadPermission")


class PolicyError(ValueError):
    """A policy, scope or assignment Exchange would refuse; the message says why."""


def _not_found(key: str) -> PolicyError:
    return PolicyError(
        f"The operation couldn't be performed because object '{key}' couldn't be found."
    )


@dataclass
class AccessPolicy:
    """One application access policy: one app (or ``*``) and one scope recipient."""

    app_id: str
    access_right: AccessRight
    scope_id: str  # a group id or a user id
    scope_name: str
    description: str = ""
    identity: str = field(default_factory=new_id)

    def as_json(self, tenant: Tenant) -> dict[str, Any]:
        return {
            "Identity": f"{tenant.id}\\{self.identity}",
            "AppId": self.app_id,
            "AccessRight": self.access_right,
            "ScopeName": self.scope_name,
            "ScopeIdentity": self.scope_id,
            "Description": self.description,
            "IsValid": True,
        }


@dataclass
class ManagementScope:
    name: str
    recipient_filter: RecipientFilter
    identity: str = field(default_factory=new_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "Identity": self.identity,
            "Name": self.name,
            "ScopeRestrictionType": "RecipientScope",
            "Exclusive": False,
            "RecipientFilter": self.recipient_filter.text,
        }


@dataclass
class RoleAssignment:
    name: str
    role: str
    app_id: str
    service_principal_id: str
    scope_name: str | None  # None: the whole organization
    identity: str = field(default_factory=new_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "Identity": self.identity,
            "Name": self.name,
            "Role": self.role,
            "RoleAssignee": self.service_principal_id,
            "RoleAssigneeType": "ServicePrincipal",
            "AppId": self.app_id,
            "CustomResourceScope": self.scope_name,
            "RecipientWriteScope": "CustomRecipientScope" if self.scope_name else "Organization",
            "AssignmentMethod": "Direct",
        }


@dataclass
class MailboxPermission:
    """``Add-MailboxPermission -Identity <mailbox> -User <delegate> -AccessRights ...``."""

    mailbox_id: str
    user_id: str
    access_rights: str  # "FullAccess" (read and write) or "ReadPermission" (read)
    identity: str = field(default_factory=new_id)

    @property
    def allows_write(self) -> bool:
        return self.access_rights == "FullAccess"


@dataclass(frozen=True)
class _Settings:
    effective_from: datetime
    access_policies: list[AccessPolicy]
    scopes: dict[str, ManagementScope]
    role_assignments: list[RoleAssignment]

    @classmethod
    def empty(cls) -> _Settings:
        return cls(datetime.min.replace(tzinfo=UTC), [], {}, [])


@dataclass
class TenantPolicies:
    """All mailbox authorization settings of one tenant."""

    tenant: Tenant
    access_policies: list[AccessPolicy] = field(default_factory=list)
    scopes: dict[str, ManagementScope] = field(default_factory=dict)  # by lower-cased name
    role_assignments: list[RoleAssignment] = field(default_factory=list)
    mailbox_permissions: list[MailboxPermission] = field(default_factory=list)
    recipient_attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # by user id
    # What Graph enforces: (effective from, access policies, scopes, role assignments), oldest
    # first; the first entry is the state before any change.
    history: list[_Settings] = field(default_factory=lambda: [_Settings.empty()])

    # -- propagation ------------------------------------------------------------------------
    def record_change(self, now: datetime, delay_seconds: float) -> None:
        """The configured settings reach Graph ``delay_seconds`` after ``now``."""
        self.history.append(self._current(now + timedelta(seconds=delay_seconds)))
        # Entries overtaken by a newer effective one are never read again.
        effective = [i for i, h in enumerate(self.history) if h.effective_from <= now]
        if len(effective) > 1:
            del self.history[: effective[-1]]

    def apply_now(self) -> None:
        """Make the configured settings the enforced ones at once (seeding)."""
        self.history = [self._current(datetime.min.replace(tzinfo=UTC))]

    def _current(self, effective_from: datetime) -> _Settings:
        return _Settings(
            effective_from,
            list(self.access_policies),
            dict(self.scopes),
            list(self.role_assignments),
        )

    def enforced(self, now: datetime) -> TenantPolicies:
        """The settings Graph applies at ``now``: the newest change that has propagated."""
        settings = next(h for h in reversed(self.history) if h.effective_from <= now)
        return replace(
            self,
            access_policies=settings.access_policies,
            scopes=settings.scopes,
            role_assignments=settings.role_assignments,
        )

    # -- lookups -------------------------------------------------------------------------
    def user(self, key: str) -> User:
        user = self.tenant.find_user(key)
        if user is None:
            raise _not_found(key)
        return user

    def _scope_member(self, scope_id: str, user: User) -> bool:
        if scope_id == user.id:
            return True
        group = self.tenant.groups.get(scope_id)
        return group is not None and is_member(self.tenant, group, user)

    def attributes(self, user: User) -> dict[str, str]:
        return self.recipient_attributes.get(user.id, {})

    # -- application access policies -----------------------------------------------------
    def add_access_policy(
        self, app_ids: list[str], scope_reference: str, access_right: str, description: str = ""
    ) -> list[AccessPolicy]:
        if access_right not in ("RestrictAccess", "DenyAccess"):
            raise PolicyError(
                "Cannot process argument transformation on parameter 'AccessRight'. "
                f"'{access_right}' is not a valid value; "
                "valid values are RestrictAccess, DenyAccess."
            )
        if not app_ids:
            raise PolicyError("AppId is required.")
        scope_id, scope_name = self._policy_scope(scope_reference)
        created = [
            AccessPolicy(
                app_id=app_id.lower() if app_id != "*" else "*",
                access_right=access_right,  # type: ignore[arg-type]
                scope_id=scope_id,
                scope_name=scope_name,
                description=description,
            )
            for app_id in app_ids
        ]
        self.access_policies.extend(created)
        return created

    def _policy_scope(self, reference: str) -> tuple[str, str]:
        group: Group | None = find_group_by_reference(self.tenant, reference)
        if group is not None:
            if not (group.mail_enabled and group.security_enabled):
                kind = (
                    "distribution group"
                    if group.mail_enabled
                    else "security group that isn't mail-enabled"
                )
                raise PolicyError(
                    f"The recipient '{reference}' is a {kind}, which isn't a valid security "
                    "principal for PolicyScopeGroupId. Use a mail-enabled security group or a "
                    "mailbox."
                )
            return group.id, group.display_name
        user = self.tenant.find_user(reference)
        if user is not None:
            return user.id, user.display_name
        raise _not_found(reference)

    def remove_access_policy(self, identity: str) -> None:
        key = identity.rsplit("\\", 1)[-1]
        before = len(self.access_policies)
        self.access_policies = [p for p in self.access_policies if p.identity != key]
        if len(self.access_policies) == before:
            raise _not_found(identity)

    def access_policy_allows(self, app_id: str, user: User) -> bool:
        """Exchange's documented evaluation order for one app and one target mailbox."""
        app_id = app_id.lower()
        mine = [p for p in self.access_policies if p.app_id in (app_id, "*")]
        if not mine:
            return True
        matching = [p for p in mine if self._scope_member(p.scope_id, user)]
        if any(p.access_right == "DenyAccess" for p in matching):
            return False
        if any(p.access_right == "RestrictAccess" for p in matching):
            return True
        return not any(p.access_right == "RestrictAccess" for p in mine)

    # -- RBAC for applications ------------------------------------------------------------
    def add_scope(self, name: str, recipient_filter: str) -> ManagementScope:
        if not name:
            raise PolicyError("Name is required.")
        if name.lower() in self.scopes:
            raise PolicyError(f"The management scope '{name}' already exists.")
        try:
            compiled = compile_filter(recipient_filter)
        except FilterSyntaxError as exc:
            raise PolicyError(f"Invalid filter syntax. {exc}") from exc
        scope = ManagementScope(name=name, recipient_filter=compiled)
        self.scopes[name.lower()] = scope
        return scope

    def find_scope(self, key: str) -> ManagementScope | None:
        return self.scopes.get(key.lower()) or next(
            (s for s in self.scopes.values() if s.identity == key), None
        )

    def remove_scope(self, key: str) -> None:
        scope = self.find_scope(key)
        if scope is None:
            raise _not_found(key)
        in_use = [
            a.name
            for a in self.role_assignments
            if (a.scope_name or "").lower() == scope.name.lower()
        ]
        if in_use:
            raise PolicyError(
                f"Management scope '{scope.name}' can't be removed because it's used by "
                "role assignments: " + ", ".join(in_use)
            )
        del self.scopes[scope.name.lower()]

    def add_role_assignment(
        self, app: str, role: str, scope: str | None = None, name: str | None = None
    ) -> RoleAssignment:
        canonical = next((r for r in APPLICATION_ROLES if r.lower() == role.lower()), None)
        if canonical is None:
            raise _not_found(role)
        principal_app_id, principal_id = self.service_principal(app)
        scope_name: str | None = None
        if scope:
            found = self.find_scope(scope)
            if found is None:
                raise _not_found(scope)
            scope_name = found.name
        assignment = RoleAssignment(
            name=name or f"{canonical}-{principal_id}"[:64],
            role=canonical,
            app_id=principal_app_id,
            service_principal_id=principal_id,
            scope_name=scope_name,
        )
        self.role_assignments.append(assignment)
        return assignment

    def service_principal(self, key: str) -> tuple[str, str]:
        """``-App`` accepts the service principal's object id, its app id or its display name."""
        lowered = key.lower()
        for app_id, principal in self.tenant.service_principals.items():
            display = self.tenant.apps[app_id].display_name if app_id in self.tenant.apps else ""
            if lowered in (principal.id.lower(), app_id.lower(), display.lower()):
                return app_id, principal.id
        raise _not_found(key)

    def remove_role_assignment(self, key: str) -> None:
        before = len(self.role_assignments)
        self.role_assignments = [
            a for a in self.role_assignments if key not in (a.identity, a.name)
        ]
        if len(self.role_assignments) == before:
            raise _not_found(key)

    def in_scope(self, assignment: RoleAssignment, user: User) -> bool:
        if assignment.scope_name is None:
            return True
        scope = self.scopes.get(assignment.scope_name.lower())
        return scope is not None and scope.recipient_filter.matches(
            self.tenant, user, self.attributes(user)
        )

    def rbac_permissions(self, app_id: str, user: User | None) -> set[str]:
        """Graph permissions RBAC grants ``app_id`` on ``user``'s mailbox (any mailbox if None)."""
        granted: set[str] = set()
        for assignment in self.role_assignments:
            if assignment.app_id.lower() == app_id.lower() and (
                user is None or self.in_scope(assignment, user)
            ):
                granted |= APPLICATION_ROLES[assignment.role]
        return granted

    # -- delegated mailbox sharing ----------------------------------------------------------
    def add_mailbox_permission(
        self, mailbox: str, user: str, access_rights: str
    ) -> MailboxPermission:
        if access_rights not in MAILBOX_ACCESS_RIGHTS:
            raise PolicyError(f"AccessRights must be one of {', '.join(MAILBOX_ACCESS_RIGHTS)}.")
        owner, delegate = self.user(mailbox), self.user(user)
        permission = MailboxPermission(
            mailbox_id=owner.id, user_id=delegate.id, access_rights=access_rights
        )
        self.mailbox_permissions.append(permission)
        return permission

    def remove_mailbox_permission(self, identity: str) -> None:
        before = len(self.mailbox_permissions)
        self.mailbox_permissions = [p for p in self.mailbox_permissions if p.identity != identity]
        if len(self.mailbox_permissions) == before:
            raise _not_found(identity)

    def shared_access(self, owner: User, delegate: User, write: bool) -> bool:
        return any(
            p.mailbox_id == owner.id and p.user_id == delegate.id and (p.allows_write or not write)
            for p in self.mailbox_permissions
        )


def policies_for(state: SimState, tenant: Tenant) -> TenantPolicies:
    """The tenant's authorization settings (created empty on first use)."""
    registry: dict[str, TenantPolicies] = state.extension("policies", dict)
    policies = registry.get(tenant.id)
    if policies is None or policies.tenant is not tenant:
        policies = registry[tenant.id] = TenantPolicies(tenant=tenant)
    return policies
