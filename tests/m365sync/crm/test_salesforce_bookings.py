"""Calendar Scheduling with Salesforce as the CRM: a meeting booked on the public pages
(m365sim's calendars) becomes one Salesforce Event on the invitee's Contact or Lead in sfsim;
an unknown invitee becomes a Lead only when the admin allows it (off by default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from m365sim.server import SimServer
from m365sync.crm.models import SalesforceActivityRecord, SalesforceMirrorRecord
from m365sync.crm.salesforce_mirror import refresh_salesforce_people
from m365sync.crm.salesforce_repository import queue_activities
from m365sync.crm.salesforce_schemas import DrainResult
from m365sync.crm.salesforce_service import (
    connect_with_jwt,
    salesforce_overview,
    set_salesforce_lead_creation,
)
from m365sync.crm.salesforce_writer import drain_salesforce
from m365sync.db.session import Database
from m365sync.settings import Settings
from sfsim import SfServer
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_INTEGRATION_USER
from support.salesforce_target_world import PAT, combined_ca_bundle
from support.salesforce_world import DEMO_KEY, sim
from support.scheduling_world import (
    SchedulingWorld,
    book_form,
    build_world,
    local,
    next_weekday,
)

NEWCOMER = "newcomer@startup.example"


class BookingOrg:
    """The scheduling world's organization with sfsim's demo org as its CRM."""

    def __init__(self, world: SchedulingWorld, sf: SfServer, settings: Settings) -> None:
        self.world, self.sf, self.settings = world, sf, settings

    @property
    def organization_id(self) -> str:
        return self.world.organization.id

    def drain(self) -> DrainResult:
        return drain_salesforce(
            self.world.database,
            self.organization_id,
            settings=self.settings,
            box=self.world.runtime.box,
        )

    def records(self, sobject: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = sim(self.sf, "GET", f"records/{sobject}")["value"]
        return [r for r in rows if not r.get("IsDeleted")]

    def book(self, client: TestClient, email: str, name: str, hour: int) -> None:
        path = f"/book/{self.world.organization.slug}/intro"
        answer = book_form(client, path, local(next_weekday(1), hour), email=email, name=name)
        assert answer.status_code == 303, answer.text


@pytest.fixture
def org(sim: SimServer, sf: SfServer, db: Database, tmp_path: Path) -> Iterator[BookingOrg]:
    world = build_world(sim, db, tmp_path)
    settings = world.settings.model_copy(
        update={
            "salesforce_login_url": sf.url,
            "ca_bundle": combined_ca_bundle(sim, sf, tmp_path),
        }
    )
    answer = requests.post(
        f"{sf.url}/_sim/seed",
        json={
            "users": [
                {
                    "username": "adele@acme.example",
                    "firstName": "Adele",
                    "lastName": "Vance",
                    "email": "adele@contoso.com",
                }
            ]
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    with db.session() as session:
        report = connect_with_jwt(
            session,
            world.runtime.box,
            settings,
            world.organization.id,
            consumer_key=SALESFORCE_CONSUMER_KEY,
            username=SALESFORCE_INTEGRATION_USER,
            private_key_pem=DEMO_KEY.private_key_pem,
        )
        assert report.ok, report.failures()
    refresh_salesforce_people(db, world.organization.id, settings=settings, box=world.runtime.box)
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    try:
        yield BookingOrg(world, sf, settings)
    finally:
        world.control.close()


def test_a_booking_is_an_event_on_the_invitees_contact(org: BookingOrg) -> None:
    with TestClient(org.world.app) as client:
        org.book(client, PAT, "Pat Buyer", 10)

    assert org.drain().synced == 1

    (event,) = org.records("Event")
    pat = next(c for c in org.records("Contact") if c["Email"] == PAT)
    adele = next(u for u in org.records("User") if u["Username"] == "adele@acme.example")
    assert event["Subject"] == "Intro call: Pat Buyer"
    assert event["WhoId"] == pat["Id"]
    assert event["OwnerId"] == adele["Id"]


def test_an_unknown_invitee_becomes_a_lead_only_when_the_admin_allows_it(
    org: BookingOrg,
) -> None:
    leads_before = len(org.records("Lead"))
    with org.world.database.session() as session:
        assert salesforce_overview(session, org.organization_id).create_leads is False
    with TestClient(org.world.app) as client:
        org.book(client, NEWCOMER, "Nia Newcomer", 11)

    # Off by default: nothing is created in Salesforce; the meeting waits as unmatched.
    result = org.drain()
    assert (result.synced, result.unmatched) == (0, 1)
    assert org.records("Event") == []
    assert len(org.records("Lead")) == leads_before

    with org.world.database.session() as session:
        set_salesforce_lead_creation(session, org.organization_id, True)
    result = org.drain()

    assert result.synced == 1
    (lead,) = [r for r in org.records("Lead") if r["Email"] == NEWCOMER]
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == (
        "Nia",
        "Newcomer",
        "startup.example",
    )
    (event,) = org.records("Event")
    assert event["WhoId"] == lead["Id"]

    # A crash after Salesforce created the Lead, before its mirror row committed: the Lead
    # is found by its address, not created twice.
    with org.world.database.session() as session:
        session.execute(
            delete(SalesforceMirrorRecord).where(SalesforceMirrorRecord.salesforce_id == lead["Id"])
        )
        activity_id = session.scalars(
            select(SalesforceActivityRecord.activity_id).where(
                SalesforceActivityRecord.organization_id == org.organization_id
            )
        ).one()
        queue_activities(session, org.organization_id, [activity_id])
    assert org.drain().synced == 1
    assert [r["Email"] for r in org.records("Lead")].count(NEWCOMER) == 1
    assert len(org.records("Event")) == 1
