"""Seed sections for mailbox authorization, loaded per tenant by ``load_policies``.

Under a tenant in a seed file (after ``users``, ``groups`` and ``apps``)::

    recipientAttributes:            # Exchange recipient properties scopes filter on
      adele@contoso.com: {Department: Sales, CustomAttribute1: EMEA}
    accessPolicies:                 # New-ApplicationAccessPolicy
      - {appId: <app id or list or "*">, policyScopeGroupId: crm-sync@contoso.com,
         accessRight: RestrictAccess, description: "..."}
    managementScopes:               # New-ManagementScope
      - {name: EMEA sales, recipientRestrictionFilter: "Department -eq 'Sales'"}
    roleAssignments:                # New-ManagementRoleAssignment
      - {app: <app id | service principal id | name>, role: Application Mail.Read,
         customResourceScope: EMEA sales}
    mailboxPermissions:             # Add-MailboxPermission (delegated .Shared access)
      - {identity: diego@contoso.com, user: adele@contoso.com, accessRights: FullAccess}
"""

from __future__ import annotations

from typing import Any

from m365sim.directory.models import Tenant
from m365sim.graph.policies.models import PolicyError, policies_for
from m365sim.state import SimState

__all__ = ["load_policies"]


def _lower_keys(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise PolicyError(f"{where}: expected a mapping")
    return {str(k).lower(): v for k, v in spec.items()}


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(v) for v in str(value).split(",") if v.strip()]


def load_policies(state: SimState, tenant: Tenant, spec: dict[str, Any]) -> None:
    """Load the authorization sections of one tenant's seed ``spec``; ``PolicyError`` names
    the offending entry."""
    policies = policies_for(state, tenant)
    for address, attributes in (spec.get("recipientAttributes") or {}).items():
        user = policies.user(str(address))
        _lower_keys(attributes, f"recipientAttributes.{address}")
        policies.recipient_attributes.setdefault(user.id, {}).update(
            {str(k): str(v) for k, v in attributes.items()}
        )
    for index, raw in enumerate(spec.get("accessPolicies") or []):
        entry = _lower_keys(raw, f"accessPolicies[{index}]")
        try:
            policies.add_access_policy(
                _as_list(entry["appid"]),
                str(entry["policyscopegroupid"]),
                str(entry.get("accessright", "RestrictAccess")),
                str(entry.get("description", "")),
            )
        except KeyError as exc:
            raise PolicyError(f"accessPolicies[{index}] needs {exc.args[0]!r}") from exc
    for index, raw in enumerate(spec.get("managementScopes") or []):
        entry = _lower_keys(raw, f"managementScopes[{index}]")
        try:
            policies.add_scope(str(entry["name"]), str(entry["recipientrestrictionfilter"]))
        except KeyError as exc:
            raise PolicyError(f"managementScopes[{index}] needs {exc.args[0]!r}") from exc
    for index, raw in enumerate(spec.get("roleAssignments") or []):
        entry = _lower_keys(raw, f"roleAssignments[{index}]")
        try:
            scope = entry.get("customresourcescope")
            policies.add_role_assignment(
                str(entry["app"]),
                str(entry["role"]),
                str(scope) if scope else None,
                entry.get("name"),
            )
        except KeyError as exc:
            raise PolicyError(f"roleAssignments[{index}] needs {exc.args[0]!r}") from exc
    for index, raw in enumerate(spec.get("mailboxPermissions") or []):
        entry = _lower_keys(raw, f"mailboxPermissions[{index}]")
        try:
            policies.add_mailbox_permission(
                str(entry["identity"]),
                str(entry["user"]),
                str(entry.get("accessrights", "FullAccess")),
            )
        except KeyError as exc:
            raise PolicyError(f"mailboxPermissions[{index}] needs {exc.args[0]!r}") from exc
    policies.apply_now()  # a seeded tenant's settings have long propagated
