"""The demo organization: its domain is proven the way a real one is, by its service
account's consent, so its users can sign in with Microsoft and its mailboxes sync; and its
CRM is the demo Salesforce org, where its mail appears."""

from __future__ import annotations

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm.salesforce_service import salesforce_overview
from m365sync.demo import (
    DEMO_ORG,
    connect_demo_salesforce,
    seed_demo_organization,
    start_demo_salesforce,
)
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof
from m365sync.sync.features import SyncFeature
from m365sync.sync.service import sync_member
from m365sync.workers.salesforce import SalesforceRunner
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


async def test_the_demo_connects_salesforce_whose_people_are_contosos_correspondents(
    sim, db, settings
):
    """``serve``'s demo: sfsim's org knows the people Contoso's mailboxes write with and
    Contoso's members; the demo organization is connected to it, and a mailbox's demo mail
    lands there as Email Messages once the Salesforce jobs have run."""
    salesforce, demo = start_demo_salesforce(settings)
    try:
        runtime = ConnectionRuntime.from_settings(demo, db)
        await seed_demo_organization(demo, db, runtime)
        connect_demo_salesforce(demo, db, runtime.box)
        connect_demo_salesforce(demo, db, runtime.box)  # already connected: left alone
        with db.session() as session:
            organization = orgs.get_organization(session, DEMO_ORG)
            overview = salesforce_overview(session, organization.id)
            diego = orgs.get_member(session, organization, "diego@contoso.com").id
        assert overview.connected and overview.status is not None
        assert overview.status.value == "active"
        assert overview.instance_url == salesforce.url
        users = {m.email: m.salesforce_username for m in overview.members}
        assert users["diego@contoso.com"] == "diego@contoso.acme.example"

        runner = SalesforceRunner(db, demo, runtime.box)
        await runner.tick()  # the mirror: Kim, Ana, Nora and Sam are Salesforce's now
        result = await sync_member(db, runtime, diego, SyncFeature.EMAIL, settings=demo)
        assert result.outcome == "ok", result.error
        await runner.tick()  # the writer
    finally:
        await runtime.aclose()
        salesforce.stop()

    senders = {r["FromAddress"] for r in salesforce.state.records.live("EmailMessage")}
    assert {"kim@fabrikam.com", "nora@northwind.example", "sam@tailspintoys.com"} <= senders
