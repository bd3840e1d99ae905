"""What is checked when an admin adds a service account or a domain: the same app in the
same tenant is refused with the name of the account that has it, and a domain the
organization's tenant does not own is added with a warning."""

from __future__ import annotations

import pytest

from m365sync.connections import service_accounts
from m365sync.connections.errors import DuplicateServiceAccount
from m365sync.organizations import service as orgs
from support.connections import add_service_account
from support.demo import SERVICE_APP_ID
from support.organizations import fresh


async def test_the_same_app_in_the_same_tenant_is_refused_naming_the_existing_account(
    sim, db, runtime, make_org
):
    org = make_org()
    first, _ = await add_service_account(db, runtime, org, name="Contoso SA")

    with pytest.raises(DuplicateServiceAccount) as refused:
        await add_service_account(db, runtime, org, name="Contoso SA again")

    assert SERVICE_APP_ID in refused.value.message and "“Contoso SA”" in refused.value.message
    assert "Nothing was saved" in (refused.value.fix or "")
    assert refused.value.existing_id == first.id
    with db.session() as session:
        listed = service_accounts.list_service_accounts(session, fresh(session, org))
    assert [a.name for a in listed] == ["Contoso SA"]


async def test_a_domain_the_tenant_does_not_own_is_added_with_a_warning(sim, db, runtime, make_org):
    org = make_org()
    await add_service_account(db, runtime, org)

    with db.session() as session:
        own = await service_accounts.add_domain_checked(
            session, runtime, fresh(session, org), "contoso.onmicrosoft.com"
        )
        customer = await service_accounts.add_domain_checked(
            session, runtime, fresh(session, org), "fabrikam.com"
        )
    assert own.warning is None
    assert customer.warning is not None and "fabrikam.com" in customer.warning
    assert "customer's or partner's domain, remove it" in (customer.warning_fix or "")
    with db.session() as session:
        names = [d.name for d in orgs.list_domains(session, fresh(session, org))]
    assert "fabrikam.com" in names  # added all the same: the admin decides


async def test_without_a_service_account_a_domain_is_added_without_asking_microsoft(
    db, runtime, make_org
):
    org = make_org()
    with db.session() as session:
        added = await service_accounts.add_domain_checked(
            session, runtime, fresh(session, org), "fabrikam.com"
        )
    assert added.warning is None and added.domain.name == "fabrikam.com"
