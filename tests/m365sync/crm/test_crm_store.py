"""The embedded CRM store: CSV import, the demo dataset, idempotent upserts."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from m365sync.crm.importer import import_csv, load_demo_crm
from m365sync.crm.models import (
    NAME_MAX_CHARS,
    SUBJECT_MAX_CHARS,
    ActivityKind,
    CrmActivity,
    PersonKind,
)
from m365sync.crm.target import AttachmentInfo, EmailRecord, EventRecord, NewLead, Participant
from m365sync.db.session import Database
from m365sync.organizations.models import Organization
from m365sync.organizations.service import add_member, create_organization, get_organization
from support.crm import InspectableCrm


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
        crm = InspectableCrm(s, org)
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
        crm = InspectableCrm(s, org)
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
        crm = InspectableCrm(s, org)
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
        crm = InspectableCrm(s, org)
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
        crm = InspectableCrm(s, org)
        assert crm.upsert_emails([_email("<shared@x>", adele, "a-1")]).created == 1
    with database.session() as s:
        crm = InspectableCrm(s, org)
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


def test_an_email_is_deleted_only_when_its_last_copy_is_settled(
    store: tuple[Database, str, str],
) -> None:
    """Copies set aside wait for their own mailbox's settling: until then they still hold
    the email (they may be halfway through a move), and one seen again is live again."""
    database, org, adele = store
    with database.session() as s:
        alex = add_member(s, org_of(s, org), "alex@contoso.com").id
    with database.session() as s:
        crm = InspectableCrm(s, org)
        crm.upsert_emails([_email("<m@x>", adele, "a-1"), _email("<m@x>", alex, "b-1")])
        crm.set_aside_email_copies(adele, ["a-1"], folder="inbox")
        crm.set_aside_email_copies(alex, ["b-1"], folder="sentitems")  # not there: no effect
        assert crm.settle_email_copies(alex, delete=True) == 0
        crm.set_aside_email_copies(alex, ["b-1"], folder="inbox")
        assert crm.settle_email_copies(alex, delete=True) == 0  # Adele's copy may be moving
        assert crm.count_activities(ActivityKind.EMAIL) == 1
        moved = _email("<m@x>", adele, "a-1")
        moved.folder = "archive"
        assert crm.upsert_emails([moved]).linked == 1
        assert crm.settle_email_copies(adele, delete=True) == 0
        assert crm.linked_item_ids(ActivityKind.EMAIL, adele, folder="archive") == {"a-1"}
        crm.set_aside_email_copies(adele, ["a-1"])
        assert crm.settle_email_copies(adele, delete=True) == 1
        assert crm.count_activities(ActivityKind.EMAIL) == 0


@pytest.mark.parametrize(
    "db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)  # SQLite has one writer at a time: the two never overlap there
def test_a_mailbox_settling_its_last_copy_sees_a_copy_being_linked_meanwhile(
    store: tuple[Database, str, str],
) -> None:
    """Alex's mailbox is logging an email (not committed yet) while Adele's pass settles her
    only copy of it: the settling waits for Alex's copy and keeps the email, instead of
    deleting it under a copy committed a moment later."""
    database, org, adele = store
    assert database.engine.dialect.name == "postgresql"
    with database.session() as s:
        alex = add_member(s, org_of(s, org), "alex@contoso.com").id
    with database.session() as s:
        InspectableCrm(s, org).upsert_emails([_email("<m@x>", adele, "a-1")])
    deleted: list[int] = []

    def settle_adeles_copy() -> None:
        with database.session() as s:
            crm = InspectableCrm(s, org)
            crm.set_aside_email_copies(adele, ["a-1"])
            deleted.append(crm.settle_email_copies(adele, delete=True))

    settling = threading.Thread(target=settle_adeles_copy)
    with database.sessions() as linking:
        InspectableCrm(linking, org).upsert_emails([_email("<m@x>", alex, "b-1")])
        settling.start()
        deadline = time.monotonic() + 30
        while settling.is_alive() and not _waiting_on_a_lock(database):
            assert time.monotonic() < deadline, "the settling neither finished nor waited"
            time.sleep(0.01)
        linking.commit()
    settling.join()

    assert deleted == [0]
    with database.session() as s:
        crm = InspectableCrm(s, org)
        assert crm.count_activities(ActivityKind.EMAIL) == 1
        assert crm.linked_item_ids(ActivityKind.EMAIL, alex) == {"b-1"}


def _waiting_on_a_lock(database: Database) -> bool:
    with database.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def test_long_subjects_and_names_are_stored_shortened(
    store: tuple[Database, str, str],
) -> None:
    database, org, adele = store
    start = datetime.now(UTC)
    with database.session() as s:
        crm = InspectableCrm(s, org)
        crm.upsert_events(
            [
                EventRecord(
                    external_id="ical-1",
                    member_id=adele,
                    graph_item_id="e-1",
                    change_key=None,
                    subject="Review " + "y" * 5_000,
                    body=None,
                    starts_at=start,
                    ends_at=start,
                    is_all_day=False,
                    location="",
                    is_cancelled=False,
                    series_key=None,
                    modified_at=start,
                    participants=[Participant("kim@fabrikam.com", "K" * 5_000, "attendee")],
                    people=[],
                    account_ids=[],
                )
            ]
        )
        crm.crm_save_task(owner_member_id=adele, title="T" * 5_000)
        meeting, task = crm.activities(ActivityKind.EVENT)[0], crm.activities(ActivityKind.TASK)[0]
    assert len(meeting.subject) == len(task.subject) == SUBJECT_MAX_CHARS
    assert meeting.subject.startswith("Review y") and meeting.subject.endswith(" [truncated]")
    assert [len(p["name"]) for p in meeting.participants] == [NAME_MAX_CHARS]


def org_of(session: Session, organization_id: str) -> Organization:
    return get_organization(session, organization_id)


def test_a_logged_emails_time_is_stored_as_the_orm_stores_times(
    store: tuple[Database, str, str],
) -> None:
    """Emails go in through prepared multi-row inserts, not the ORM: their times read back
    exactly, and compare in SQL with a time the ORM wrote (a range, an ordering), with or
    without microseconds, in any time zone and year."""
    database, org, member = store
    times = [
        datetime(2026, 12, 7, 16, 4, 47, 123456, tzinfo=UTC),
        datetime(2026, 12, 7, 16, 4, 47, tzinfo=UTC),
        datetime(2026, 12, 7, 18, 4, 48, tzinfo=timezone(timedelta(hours=2))),
        datetime(999, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ]
    with database.session() as s:
        crm = InspectableCrm(s, org)
        records = []
        for number, moment in enumerate(times):
            record = _email(f"<t{number}@b>", member, f"item-{number}")
            records.append(replace(record, occurred_at=moment))
        assert crm.upsert_emails(records).created == len(times)
    with database.session() as s:
        stored = dict(
            s.execute(
                select(CrmActivity.external_id, CrmActivity.occurred_at).where(
                    CrmActivity.organization_id == org
                )
            ).all()
        )
        assert [_utc(stored[f"<t{n}@b>"]) for n in range(len(times))] == [
            _utc(moment) for moment in times
        ]
        # The ORM's own comparison value finds exactly the emails at or after it.
        since = datetime(2026, 12, 7, 16, 4, 47, tzinfo=UTC)
        found = s.scalars(
            select(CrmActivity.external_id)
            .where(CrmActivity.organization_id == org, CrmActivity.occurred_at >= since)
            .order_by(CrmActivity.occurred_at)
        ).all()
        assert found == ["<t1@b>", "<t0@b>", "<t2@b>"]


def test_a_logged_emails_text_reads_back_exactly(store: tuple[Database, str, str]) -> None:
    """Whatever a message's text holds (quotes, backslashes, braces, commas, line breaks,
    any script, emoji, text that looks like JSON or SQL), the prepared inserts store it as
    it was: on PostgreSQL the page's rows travel as one JSON document."""
    database, org, member = store
    awkward = [
        "Quote \" and 'single' and back\\slash \\\" end",
        "{braces}, [brackets], a,comma; NULL null None",
        "Line one\nline two\r\n\ttabbed",
        "Größe, ñandú, 東京, مرحبا, emoji 📎🙂",
        '{"looks": ["like", "json"], "n": 1}',
        "'); DROP TABLE crm_activities; --",
    ]
    with database.session() as s:
        crm = InspectableCrm(s, org)
        records = [
            replace(
                _email(f'<a{n}"\\{text[:3]}@b>', member, f"item-{n}"),
                subject=text,
                body=None if n == 0 else text * 3,
                from_address=f"x{n}@example.net",
                participants=[Participant(f"x{n}@example.net", text, "from")],
                conversation_id=f"conv {text}"[:255],
                attachments=[AttachmentInfo(text, "text/plain", n)],
            )
            for n, text in enumerate(awkward)
        ]
        assert crm.upsert_emails(records).created == len(records)
    with database.session() as s:
        stored = {a.external_id: a for a in s.scalars(select(CrmActivity))}
        for n, (record, text) in enumerate(zip(records, awkward, strict=True)):
            activity = stored[record.external_id]
            assert activity.subject == text
            assert activity.body == (None if n == 0 else text * 3)
            assert activity.participants == [
                {"address": f"x{n}@example.net", "name": text, "role": "from"}
            ]
            assert activity.conversation_id == f"conv {text}"[:255]
            assert activity.attachments == [{"name": text, "contentType": "text/plain", "size": n}]


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)
