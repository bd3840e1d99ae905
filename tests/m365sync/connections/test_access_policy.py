"""Limiting access: exact PowerShell for a group, and which mailboxes are reachable."""

from __future__ import annotations

import pytest
from tests.m365sync.conftest import DEMO_APP_ID, DEMO_TENANT_ID, fresh
from tests.m365sync.connections.test_run_test import control
from tests.m365sync.connections.test_service_accounts import add

from m365sync.connections import access_policy
from m365sync.connections.access_policy import Reach
from m365sync.connections.models import ConnectionKind, CredentialType, ServiceAccount
from m365sync.errors import ValidationFailed
from m365sync.organizations import service as orgs


def account(**kwargs) -> ServiceAccount:
    values = {
        "name": "m365sync",
        "kind": ConnectionKind.OFFICE365,
        "credential_type": CredentialType.SECRET,
        "client_id": DEMO_APP_ID,
        "enabled_features": ["email", "calendar"],
        "test_mailbox": "adele@contoso.com",
    }
    values.update(kwargs)
    return ServiceAccount(**values)


def test_commands_for_a_group():
    commands = policy = access_policy.policy_commands(
        account(), "crm-sync@contoso.com", service_principal_id="sp-object-id"
    )
    assert (
        f"New-ApplicationAccessPolicy -AppId '{DEMO_APP_ID}' -PolicyScopeGroupId "
        "'crm-sync@contoso.com' "
        "-AccessRight RestrictAccess -Description 'Restrict m365sync to members of "
        "crm-sync@contoso.com'"
    ) in policy.application_access_policy
    assert (
        f"Test-ApplicationAccessPolicy -Identity 'adele@contoso.com' -AppId '{DEMO_APP_ID}'"
        in policy.application_access_policy
    )
    rbac = commands.rbac_for_applications
    assert f"New-ServicePrincipal -AppId '{DEMO_APP_ID}' -ObjectId 'sp-object-id'" in rbac
    assert (
        "New-ManagementScope -Name 'm365sync mailboxes' -RecipientRestrictionFilter "
        "\"MemberOfGroup -eq '$($group.DistinguishedName)'\"" in rbac
    )
    for role in (
        "Application Mail.Read",
        "Application Mail.ReadWrite",
        "Application Calendars.ReadWrite",
    ):
        assert (
            f"New-ManagementRoleAssignment -App '{DEMO_APP_ID}' -Role '{role}' "
            "-CustomResourceScope 'm365sync mailboxes'" in rbac
        )
    assert any("remove the unscoped" in note for note in commands.notes)


def test_names_are_quoted_and_bad_groups_refused():
    commands = access_policy.policy_commands(account(name="O'Brien's sync"), "crm-sync@contoso.com")
    assert (
        "'Restrict O''Brien''s sync to members of crm-sync@contoso.com'"
        in commands.application_access_policy
    )
    with pytest.raises(ValidationFailed):
        access_policy.policy_commands(account(), "crm'; Remove-Mailbox x; '")


async def test_reachability_per_member(sim, db, runtime, make_org):
    org = make_org()
    saved, _ = await add(db, runtime, org)
    with db.session() as session:
        for email in (
            "adele@contoso.com",
            "johanna@contoso.com",
            "pradeep@contoso.com",
            "onprem@contoso.com",
            "ghost@contoso.com",
        ):
            orgs.add_member(session, fresh(session, org), email)
    # About what a policy decides, not when: this test lets policy changes reach Graph at
    # once (the default is Exchange's propagation delay, see docs/m365sim/access-and-limits.md).
    sim.state.config.policy_propagation_seconds = 0
    control(
        sim,
        "POST",
        f"/_sim/tenants/{DEMO_TENANT_ID}/accessPolicies",
        json={
            "AppId": DEMO_APP_ID,
            "PolicyScopeGroupId": "crm-sync@contoso.com",
            "AccessRight": "RestrictAccess",
        },
    )
    with db.session() as session:
        results = await access_policy.reachability(session, runtime, fresh(session, org), saved)
    reach = {r.email: r.reach for r in results}
    assert reach == {
        "adele@contoso.com": Reach.REACHABLE,
        "johanna@contoso.com": Reach.BLOCKED_BY_POLICY,
        "pradeep@contoso.com": Reach.NOT_ENABLED,
        "onprem@contoso.com": Reach.NOT_ENABLED,
        "ghost@contoso.com": Reach.NOT_FOUND,
    }
    await runtime.aclose()
