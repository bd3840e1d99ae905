"""The demo organization: its domain is proven the way a real one is, by its service
account's consent, so its users can sign in with Microsoft and its mailboxes sync."""

from __future__ import annotations

from m365sync.demo import DEMO_ORG, seed_demo_organization
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof
from support.demo import DEMO_TENANT_ID


async def test_the_demo_organizations_domain_is_verified_by_its_service_account(
    sim, db, settings, runtime
):
    await seed_demo_organization(settings, db, runtime)
    await seed_demo_organization(settings, db, runtime)  # idempotent
    with db.session() as session:
        (domain,) = orgs.list_domains(session, orgs.get_organization(session, DEMO_ORG))
    assert domain.name == "contoso.com" and domain.verified
    assert domain.verification_method == DomainProof.SERVICE_ACCOUNT
    assert domain.tenant_id == DEMO_TENANT_ID
