"""The embedded CRM store: CSV import, the demo dataset, idempotent upserts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.importer import import_csv, load_demo_crm
from m365sync.crm.models import ActivityKind, PersonKind
from m365sync.crm.target import EmailRecord, NewLead, Participant
from m365sync.db.session import Database
from m365sync.organizations.models import Organization
from m365sync.organizations.service import add_member, create_organization, get_organization


@pytest.fixture
def store(db: Database) -> tuple[Database, str, str]:
    """Contoso and one member, on SQLite and on PostgreSQL."""
    with db.session() as s:
        org = create_organization(s, "Contoso")
        member = add_member(s, org, "adele@contoso.com")
        return db, org.id, member.id


def test_csv_import_is_idempotent_and_reports_bad_rows(store: tuple[Database, str, str]) -> None:
    database, org, _ = store
    accounts = "name,domains\nFabrikam,fabrikam.com fabrikam.de\nLitware,litware.com\n"
    contacts = (
        "email,first_name,last_name,company,title\n"
        "Kim@Fabrikam.com,Kim,Akers,Fabrikam,Buyer\n"
        "not-an-email,X,Y,,\n"
    )
    with database.session() as s:
        first = import_csv(s, org, "accounts", accounts)
        again = import_csv(s, org, "accounts", accounts)
        people = import_csv(s, org, "contacts", contacts)
        crm = EmbeddedCrm(s, org)
        assert (first.created, again.created, again.updated) == (2, 0, 2)
        assert (people.created, people.errors) == (
            1,
            [(3, "'not-an-email' is not an email address. Enter one such as kim@fabrikam.com.")],
        )
        found = crm.find_people(["kim@fabrikam.com"])
        fabrikam = crm.account_by_name("Fabrikam")
        assert fabrikam is not None
        assert found["kim@fabrikam.com"].account_id == fabrikam.id
        assert crm.find_accounts_by_domain(["fabrikam.de", "nowhere.org"]) == {
            "fabrikam.de": fabrikam.id
        }


def test_csv_import_reports_values_too_long_for_the_store_and_imports_the_rest(
    store: tuple[Database, str, str],
) -> None:
    """On PostgreSQL a value longer than its column failed the whole import; on SQLite it
    was cut short without a word. Now the line is reported and the others imported."""
    database, org, _ = store
    contacts = (
        "email,first_name,last_name,company,title,phone\n"
        f"kim@fabrikam.com,{'K' * 101},Akers,Fabrikam,Buyer,\n"
        "ana@fabrikam.com,Ana,Ruiz,Fabrikam,Buyer,+1 555 0100\n"
        f"nora@northwind.example,Nora,North,{'N' * 201},,\n"
        f"sam@tailspintoys.com,Sam,Tail,,,{'5' * 51}\n"
    )
    accounts = f"name,domains\n{'A' * 201},a.example\nLitware,{'d' * 250}.com\nTailspin,t.com\n"
    with database.session() as s:
        people = import_csv(s, org, "contacts", contacts)
        companies = import_csv(s, org, "accounts", accounts)
    assert people.created == 1 and companies.created == 1
    assert [(line, problem.split(";")[0]) for line, problem in people.errors] == [
        (2, "first_name is 101 characters long"),
        (4, "company is 201 characters long"),
        (5, "phone is 51 characters long"),
    ]
    assert all("Shorten it to" in problem for _, problem in people.errors)
    assert [(line, problem.split(";")[0]) for line, problem in companies.errors] == [
        (2, "name is 201 characters long"),
        (3, "domain is 254 characters long"),
    ]
    with database.session() as s:
        crm = EmbeddedCrm(s, org)
        assert set(crm.find_people(["kim@fabrikam.com", "ana@fabrikam.com"])) == {
            "ana@fabrikam.com"
        }
        assert crm.account_by_name("Litware") is None  # its bad domain rejected the line
        assert crm.account_by_name("Tailspin") is not None


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


def _email(external_id: str, member: str, item: str) -> EmailRecord:
    return EmailRecord(
        external_id=external_id,
        member_id=member,
        graph_item_id=item,
        folder="inbox",
        subject=f"About {external_id}",
        body="x",
        body_type="text",
        headers_only=False,
        occurred_at=datetime.now(UTC),
        from_address="pat@example.net",
        participants=[Participant("pat@example.net", "Pat", "from")],
        people=[],
        account_ids=[],
    )


def test_a_page_mixing_new_and_known_emails_links_without_duplicates(
    store: tuple[Database, str, str],
) -> None:
    database, org, adele = store
    with database.session() as s:
        alex = add_member(s, org_of(s, org), "alex@contoso.com").id
    with database.session() as s:
        crm = EmbeddedCrm(s, org)
        assert crm.upsert_emails([_email("<shared@x>", adele, "a-1")]).created == 1
    with database.session() as s:
        crm = EmbeddedCrm(s, org)
        page = [_email("<shared@x>", alex, "b-1"), _email("<new@x>", alex, "b-2")]
        result = crm.upsert_emails(page)
        assert (result.created, result.unchanged, result.linked) == (1, 1, 2)
        by_id = {a.external_id: a for a in crm.activities(ActivityKind.EMAIL)}
        assert sorted(by_id) == ["<new@x>", "<shared@x>"]
        shared = {
            m.member_id: m.graph_item_id for m in crm.activity_members(by_id["<shared@x>"].id)
        }
        assert shared == {adele: "a-1", alex: "b-1"}
        assert crm.upsert_emails(page).created == 0


def org_of(session: Session, organization_id: str) -> Organization:
    return get_organization(session, organization_id)
