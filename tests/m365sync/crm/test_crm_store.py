"""The embedded CRM store: CSV import, the demo dataset, idempotent upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.importer import import_csv, load_demo_crm
from m365sync.crm.models import ActivityKind, PersonKind
from m365sync.crm.target import EmailRecord, NewLead, Participant
from m365sync.db.migrate import migrate
from m365sync.db.session import Database
from m365sync.organizations.service import add_member, create_organization


@pytest.fixture
def store(tmp_path: Path) -> tuple[Database, str, str]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    migrate(database.engine)
    with database.session() as s:
        org = create_organization(s, "Contoso")
        member = add_member(s, org, "adele@contoso.com")
        return database, org.id, member.id


def test_csv_import_is_idempotent_and_reports_bad_rows(store: tuple[Database, str, str]) -> None:
    database, org, _ = store
    accounts = "name,domains\nFabrikam,fabrikam.com fabrikam.de\nLitware,litware.com\n"
    contacts = "email,first_name,last_name,company,title\nKim@Fabrikam.com,Kim,Akers,Fabrikam,Buyer\nnot-an-email,X,Y,,\n"
    with database.session() as s:
        first = import_csv(s, org, "accounts", accounts)
        again = import_csv(s, org, "accounts", accounts)
        people = import_csv(s, org, "contacts", contacts)
        crm = EmbeddedCrm(s, org)
        assert (first.created, again.created, again.updated) == (2, 0, 2)
        assert (people.created, people.errors) == (
            1,
            [(3, "'not-an-email' is not an email address")],
        )
        found = crm.find_people(["kim@fabrikam.com"])
        fabrikam = crm.account_by_name("Fabrikam")
        assert fabrikam is not None
        assert found["kim@fabrikam.com"].account_id == fabrikam.id
        assert crm.find_accounts_by_domain(["fabrikam.de", "nowhere.org"]) == {
            "fabrikam.de": fabrikam.id
        }


def test_demo_dataset_matches_the_demo_tenants_correspondents(
    store: tuple[Database, str, str],
) -> None:
    database, org, _ = store
    with database.session() as s:
        report = load_demo_crm(s, org)
        crm = EmbeddedCrm(s, org)
        found = crm.find_people(
            ["kim@fabrikam.com", "nora@northwind.example", "sam@tailspintoys.com"]
        )
    assert not report.errors
    assert {e: p.kind for e, p in found.items()} == {
        "kim@fabrikam.com": PersonKind.CONTACT,
        "nora@northwind.example": PersonKind.CONTACT,
        "sam@tailspintoys.com": PersonKind.LEAD,
    }


def test_upserts_are_idempotent_by_external_id(store: tuple[Database, str, str]) -> None:
    database, org, member = store
    with database.session() as s:
        crm = EmbeddedCrm(s, org)
        lead = crm.create_leads([NewLead("pat@example.net", "Pat Doe")], member)["pat@example.net"]
        record = EmailRecord(
            external_id="<a@b>",
            member_id=member,
            graph_item_id="item-1",
            folder="inbox",
            subject="Hi",
            body="x",
            body_type="text",
            headers_only=False,
            occurred_at=datetime.now(UTC),
            from_address="pat@example.net",
            participants=[Participant("pat@example.net", "Pat", "from")],
            people=[lead],
            account_ids=[],
        )
        assert crm.upsert_emails([record, record]).created == 1
        assert crm.upsert_emails([record]).created == 0
        assert crm.count_activities(ActivityKind.EMAIL) == 1
        (activity,) = crm.activities(ActivityKind.EMAIL)
        assert crm.activity_people(activity.id) == [(PersonKind.LEAD, lead.id)]
