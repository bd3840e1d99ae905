"""The Salesforce writer: mail and meetings synced by the Graph engine from m365sim, then
drained into sfsim — exactly once, related to everyone they involve, parked or paused with
a plain reason when Salesforce says no."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from m365sync.crm import salesforce_writer
from m365sync.crm.models import SalesforceActivityRecord, WriteState
from m365sync.crm.salesforce_repository import SalesforceRepository
from m365sync.crm.salesforce_schemas import DrainStatus
from m365sync.crm.salesforce_service import (
    retry_parked_salesforce_records,
    salesforce_overview,
    set_salesforce_api_share,
)
from m365sync.sync.features import SyncFeature
from sfsim import DEMO_SEED
from sfsim.seed import read_seed
from support.salesforce_target_world import (
    ADELE,
    ALEX,
    DIEGO,
    MEMBERS,
    NINA,
    PAT,
    SAM,
    SalesforceTarget,
)


def connected(target: SalesforceTarget) -> None:
    report = target.connect()
    assert report.ok, report.failures()
    target.mirror()


def mail(
    target: SalesforceTarget,
    subject: str,
    *,
    sender: str = PAT,
    to: tuple[str, ...] = (ADELE,),
    cc: tuple[str, ...] = (ALEX,),
    mailboxes: tuple[str, ...] = (ADELE, ALEX),
    **extra: Any,
) -> str:
    message_id = f"<{subject.lower().replace(' ', '-')}@fabrikam.example>"
    spec = {
        "from": sender,
        "to": list(to),
        "cc": list(cc),
        "subject": subject,
        "internetMessageId": message_id,
        **extra,
    }
    for mailbox in mailboxes:
        target.sync.deliver(mailbox, **spec)
    return message_id


def sync(
    target: SalesforceTarget, *mailboxes: str, feature: SyncFeature = SyncFeature.EMAIL
) -> None:
    for mailbox in mailboxes:
        result = target.sync.sync(mailbox, feature)
        assert result.outcome == "ok", (result.error, result.fix)


def ledger(target: SalesforceTarget) -> list[SalesforceActivityRecord]:
    with target.database.session() as session:
        return list(
            session.scalars(
                select(SalesforceActivityRecord).where(
                    SalesforceActivityRecord.organization_id == target.organization_id
                )
            )
        )


def relations(target: SalesforceTarget, email_id: str) -> set[tuple[str, str]]:
    return {
        (r["RelationId"], r["RelationType"])
        for r in target.records("EmailMessageRelation")
        if r["EmailMessageId"] == email_id
    }


def writes(target: SalesforceTarget, sobject: str) -> list[dict[str, Any]]:
    """Requests that wrote ``sobject`` records (upserts by external id)."""
    return [r for r in target.api_requests() if f"composite/sobjects/{sobject}/" in r["path"]]


def test_one_email_in_two_mailboxes_is_one_email_message_related_to_everyone(
    target: SalesforceTarget,
) -> None:
    connected(target)
    message_id = mail(target, "Proposal", body="<p>Our offer, attached.</p>")
    sync(target, ADELE, ALEX)

    result = target.drain()

    assert (result.status, result.synced, result.written, result.related) == (
        DrainStatus.DRAINED,
        1,
        1,
        3,
    )
    (email,) = target.records("EmailMessage")
    assert email["M365Sync_Message_Id__c"] == message_id
    assert email["MessageIdentifier"] == message_id
    assert (email["Subject"], email["FromAddress"]) == ("Proposal", PAT)
    assert (email["ToAddress"], email["CcAddress"]) == (ADELE, ALEX)
    assert "Our offer" in email["TextBody"]
    assert (email["Status"], email["Incoming"]) == ("1", True)
    # Related to the deal: Fabrikam's only open opportunity.
    assert email["RelatedToId"] == target.record_id("Opportunity", Name="Fabrikam - 500 units")
    assert relations(target, email["Id"]) == {
        (target.record_id("Contact", Email=PAT), "FromAddress"),
        (target.user_id("adele@acme.example"), "ToAddress"),
        (target.user_id("alex@acme.example"), "CcAddress"),
    }
    (task,) = target.records("Task")  # Enhanced Email's own Task for the timeline
    assert (task["TaskSubtype"], task["Subject"]) == ("Email", "Email: Proposal")
    assert [row.state for row in ledger(target)] == [WriteState.SYNCED]

    # Draining (and syncing) again changes nothing and costs no API request.
    target.forget_requests()
    sync(target, ADELE, ALEX)
    again = target.drain()
    assert (again.synced, again.written, again.api_calls) == (0, 0, 0)
    assert target.api_requests() == []
    assert len(target.records("EmailMessage")) == 1
    assert len(target.records("EmailMessageRelation")) == 3


def test_attachments_are_named_in_the_email_message_and_never_uploaded(
    target: SalesforceTarget,
) -> None:
    connected(target)
    mail(
        target,
        "Signed contract",
        body="Please find it attached.",
        mailboxes=(ADELE,),
        attachments=[
            {"name": "contract.pdf", "contentType": "application/pdf", "size": 48_213},
            {"name": "logo.png", "contentType": "image/png", "size": 10, "isInline": True},
        ],
    )
    sync(target, ADELE)

    assert target.drain().synced == 1

    (email,) = target.records("EmailMessage")
    assert email["TextBody"].startswith("Please find it attached.")
    assert email["TextBody"].endswith(
        "Attachments (kept in the mailbox): contract.pdf (application/pdf, 47 KB)"
    )
    assert "logo.png" not in email["TextBody"]
    assert not [r for r in target.api_requests() if "Attachment" in r["path"]]
    assert not [r for r in target.api_requests() if "ContentVersion" in r["path"]]


def test_a_mailbox_synced_later_adds_its_user_and_nothing_else(target: SalesforceTarget) -> None:
    connected(target)
    mail(target, "Quote", cc=(), mailboxes=(ADELE,))
    target.sync.deliver(
        DIEGO,
        **{
            "from": PAT,
            "to": [ADELE],
            "bcc": [DIEGO],
            "subject": "Quote",
            "internetMessageId": "<quote@fabrikam.example>",
        },
    )
    sync(target, ADELE)
    assert target.drain().synced == 1
    (email,) = target.records("EmailMessage")
    assert len(relations(target, email["Id"])) == 2

    sync(target, DIEGO)
    target.forget_requests()
    later = target.drain()

    assert (later.synced, later.written, later.related) == (1, 0, 1)
    assert (target.user_id("diego@acme.example"), "ToAddress") in relations(target, email["Id"])
    assert len(target.records("EmailMessage")) == 1
    assert writes(target, "EmailMessage") == []  # a sent email is never written again
    assert len(target.api_requests()) == 1  # the relation, and nothing else


def test_a_crash_between_salesforces_answer_and_the_local_commit_creates_no_duplicate(
    target: SalesforceTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected(target)
    message_id = mail(target, "Renewal")
    sync(target, ADELE, ALEX)
    record = salesforce_writer._record

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the worker died before recording Salesforce's answer")

    monkeypatch.setattr(salesforce_writer, "_record", crash)
    with pytest.raises(RuntimeError):
        target.drain()
    (row,) = ledger(target)
    assert (row.state, row.uncertain, row.salesforce_id) == (WriteState.PENDING, True, None)
    assert len(target.records("EmailMessage")) == 1  # Salesforce did save it

    monkeypatch.setattr(salesforce_writer, "_record", record)
    target.forget_requests()
    recovered = target.drain()

    assert recovered.synced == 1
    (email,) = target.records("EmailMessage")
    assert email["M365Sync_Message_Id__c"] == message_id
    assert len(relations(target, email["Id"])) == 3
    assert len(target.records("EmailMessageRelation")) == 3
    assert writes(target, "EmailMessage") == []  # found by a lookup, not written again
    (row,) = ledger(target)
    assert (row.state, row.uncertain, row.salesforce_id) == (
        WriteState.SYNCED,
        False,
        email["Id"],
    )


def test_an_answer_lost_on_the_wire_is_looked_up_not_written_twice(
    target: SalesforceTarget,
) -> None:
    connected(target)
    mail(target, "Dropped")
    sync(target, ADELE, ALEX)
    target.control(
        "POST",
        "faults",
        json={"kind": "drop", "method": "PATCH", "pathRegex": "composite/sobjects/EmailMessage"},
    )

    first = target.drain()

    assert (first.synced, first.retrying) == (0, 1)
    (row,) = ledger(target)
    assert row.uncertain and row.next_attempt_at is not None
    assert len(target.records("EmailMessage")) == 1

    second = target.drain(now=lambda: datetime.now(UTC) + timedelta(hours=1))

    assert second.synced == 1
    assert len(target.records("EmailMessage")) == 1
    assert len(target.records("EmailMessageRelation")) == 3


def test_a_validation_rule_parks_that_email_with_a_plain_reason_and_the_rest_goes_through(
    target: SalesforceTarget,
) -> None:
    connected(target)
    target.control(
        "POST",
        "seed",
        json={
            "validationRules": [
                {
                    "object": "EmailMessage",
                    "name": "No_Secret_Plans",
                    "field": "Subject",
                    "kind": "notEqual",
                    "value": "Secret plans",
                    "message": "Emails about secret plans stay out of Salesforce.",
                }
            ]
        },
    )
    secret = mail(target, "Secret plans")
    mail(target, "Lunch")
    sync(target, ADELE, ALEX)

    result = target.drain()

    assert (result.synced, result.parked) == (1, 1)
    assert [e["Subject"] for e in target.records("EmailMessage")] == ["Lunch"]
    parked = next(r for r in ledger(target) if r.state == WriteState.PARKED)
    assert "Emails about secret plans stay out of Salesforce." in parked.reason
    assert f"EmailMessage M365Sync_Message_Id__c '{secret}'" in parked.reason
    assert "Validation Rules" in parked.fix
    assert parked.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    # Parked records wait for a person; retrying while the rule holds parks it again.
    with target.database.session() as session:
        assert retry_parked_salesforce_records(session, target.organization_id) == 1
    assert target.drain().parked == 1
    with target.database.session() as session:
        overview = salesforce_overview(session, target.organization_id)
    assert overview.records == {"synced": 1, "parked": 1}


def test_the_api_share_pauses_the_writer_with_when_it_resumes(target: SalesforceTarget) -> None:
    connected(target)
    mail(target, "Budget")
    sync(target, ADELE, ALEX)
    used = target.control("GET", "org")["apiUsage"]["used"]
    # The org's allowance is almost used: m365sync's half of it is gone already.
    target.control("PATCH", "config", json={"daily_api_requests": used + 3})

    paused = target.drain()

    assert paused.status == DrainStatus.PAUSED
    assert paused.resumes_at is not None
    assert "resumes at" in paused.message and "UTC" in paused.message
    assert "share" in paused.fix
    target.forget_requests()
    still = target.drain()
    assert still.status == DrainStatus.PAUSED and still.api_calls == 0
    assert target.api_requests() == []
    # An admin lets m365sync use the whole allowance: writing resumes, nothing doubles.
    with target.database.session() as session:
        set_salesforce_api_share(session, target.organization_id, 1.0)
    resumed = target.drain()
    assert resumed.status == DrainStatus.DRAINED and resumed.synced == 1
    assert len(target.records("EmailMessage")) == 1
    assert len(target.records("EmailMessageRelation")) == 3


def test_the_orgs_daily_limit_pauses_the_writer(target: SalesforceTarget) -> None:
    connected(target)
    mail(target, "Limit")
    sync(target, ADELE, ALEX)
    target.control("POST", "faults", json={"kind": "REQUEST_LIMIT_EXCEEDED", "count": 1})

    paused = target.drain()

    assert paused.status == DrainStatus.PAUSED
    assert "whole API request limit" in paused.message
    assert "resumes at" in paused.message
    with target.database.session() as session:
        overview = salesforce_overview(session, target.organization_id)
    assert overview.paused_until == paused.resumes_at
    assert overview.pause_reason == paused.message
    (row,) = ledger(target)
    assert (row.state, row.uncertain, row.attempts) == (WriteState.PENDING, False, 0)
    after = target.drain(now=lambda: datetime.now(UTC) + timedelta(days=1))
    assert after.synced == 1


def test_a_locked_row_is_retried_later(target: SalesforceTarget) -> None:
    connected(target)
    mail(target, "Locked")
    sync(target, ADELE, ALEX)
    target.control("POST", "faults", json={"kind": "UNABLE_TO_LOCK_ROW", "count": 1})

    first = target.drain()

    assert (first.retrying, first.synced) == (1, 0)
    (row,) = ledger(target)
    assert row.next_attempt_at is not None and row.attempts == 1
    assert "changing the same Salesforce record" in row.reason
    assert "tried again" in row.fix
    assert target.drain().synced == 0  # not before its time
    assert target.drain(now=lambda: datetime.now(UTC) + timedelta(hours=1)).synced == 1
    assert len(target.records("EmailMessage")) == 1


def test_a_thousand_emails_cost_at_most_twelve_api_requests(target: SalesforceTarget) -> None:
    connected(target)
    count = 400
    answer = target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/messages/generate",
        json={
            "count": count,
            "days": 10,
            "correspondents": [
                {"name": "Pat Buyer", "address": PAT},
                {"name": "Sam Engineer", "address": SAM},
                {"name": "Nina Owner", "address": NINA},
            ],
        },
    )
    answer.raise_for_status()
    sync(target, ADELE)
    target.forget_requests()

    result = target.drain()

    assert result.synced == count
    assert len(target.records("EmailMessage")) == count
    assert len(target.records("EmailMessageRelation")) == 2 * count  # the contact, and Adele
    calls = len(target.api_requests())
    assert calls == result.api_calls
    assert calls * 1000 / count <= 12, f"{calls} API requests for {count} emails"


def test_without_enhanced_email_each_email_is_one_task(target: SalesforceTarget) -> None:
    data = read_seed(DEMO_SEED)
    data["org"]["enhancedEmail"] = False
    data["users"] += [
        {"username": f"{a.split('@')[0]}@acme.example", "lastName": "Contoso", "email": a}
        for a in MEMBERS
    ]
    answer = requests.post(f"{target.sf.url}/_sim/seed?reset=true", json=data, timeout=10)
    assert answer.status_code == 201, answer.text
    connected(target)
    message_id = mail(target, "Meeting notes", body="Notes inside")
    sync(target, ADELE, ALEX)

    result = target.drain()

    assert result.synced == 1
    (task,) = target.records("Task")
    assert (task["TaskSubtype"], task["Subject"], task["Status"]) == (
        "Email",
        "Email: Meeting notes",
        "Completed",
    )
    assert task["M365Sync_Message_Id__c"] == message_id
    assert task["WhoId"] == target.record_id("Contact", Email=PAT)
    assert task["OwnerId"] == target.user_id("adele@acme.example")
    assert "Notes inside" in task["Description"]
    assert target.drain().written == 0
    assert len(target.records("Task")) == 1


def test_a_meeting_is_one_event_owned_by_its_organizer_with_its_people(
    target: SalesforceTarget,
) -> None:
    connected(target)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    def gtime(value: datetime) -> dict[str, str]:
        return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

    made = target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": "Quarterly review",
            "start": gtime(start),
            "end": gtime(start + timedelta(hours=1)),
            "attendees": [
                {"emailAddress": {"address": ALEX}},
                {"emailAddress": {"address": PAT}},
            ],
        },
    )
    made.raise_for_status()
    sync(target, ADELE, ALEX, feature=SyncFeature.CALENDAR)

    result = target.drain()

    assert result.synced == 1
    (event,) = target.records("Event")
    assert event["Subject"] == "Quarterly review"
    assert event["OwnerId"] == target.user_id("adele@acme.example")
    assert event["WhoId"] == target.record_id("Contact", Email=PAT)
    assert event["DurationInMinutes"] == 60
    assert Counter(
        (r["RelationId"], r["IsInvitee"]) for r in target.records("EventRelation")
    ) == Counter(
        {
            (target.record_id("Contact", Email=PAT), False): 1,
            (target.user_id("alex@acme.example"), True): 1,
        }
    )
    # Moved in Outlook: the same Event follows.
    target.sync.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{made.json()['id']}",
        json={"subject": "Quarterly review (moved)"},
    ).raise_for_status()
    sync(target, ADELE, feature=SyncFeature.CALENDAR)
    assert target.drain().written == 1
    (event,) = target.records("Event")
    assert event["Subject"] == "Quarterly review (moved)"
    assert len(target.records("EventRelation")) == 2


def test_a_to_do_task_is_a_salesforce_task_of_its_member(target: SalesforceTarget) -> None:
    connected(target)
    made = target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/todo/lists/default/tasks",
        json={
            "title": "Call Pat back",
            "importance": "high",
            "body": {"content": "About pricing", "contentType": "text"},
        },
    )
    made.raise_for_status()
    sync(target, ADELE, feature=SyncFeature.TASKS)

    assert target.drain().synced == 1

    (task,) = target.records("Task")
    assert (task["Subject"], task["Priority"], task["Status"], task["TaskSubtype"]) == (
        "Call Pat back",
        "High",
        "Not Started",
        "Task",
    )
    assert task["OwnerId"] == target.user_id("adele@acme.example")
    assert task["Description"] == "About pricing"
    assert task["M365Sync_Todo_Id__c"]
    target.sync.control.patch(
        f"/_sim/mailboxes/{ADELE}/todo/lists/default/tasks/{made.json()['id']}",
        json={"status": "completed"},
    ).raise_for_status()
    sync(target, ADELE, feature=SyncFeature.TASKS)
    assert target.drain().written == 1
    (task,) = target.records("Task")
    assert task["Status"] == "Completed"


def test_a_meeting_deleted_in_outlook_leaves_salesforce(target: SalesforceTarget) -> None:
    connected(target)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    made = target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": "Demo",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "attendees": [{"emailAddress": {"address": PAT}}],
        },
    )
    made.raise_for_status()
    sync(target, ADELE, feature=SyncFeature.CALENDAR)
    assert target.drain().synced == 1
    assert len(target.records("Event")) == 1

    target.sync.control.delete(f"/_sim/mailboxes/{ADELE}/events/{made.json()['id']}")
    sync(target, ADELE, feature=SyncFeature.CALENDAR)
    gone = target.drain()

    assert (gone.synced, gone.deleted) == (1, 1)
    assert target.records("Event") == []
    assert target.records("EventRelation") == []


def test_a_round_takes_never_tried_writes_first_then_retries_by_time(
    target: SalesforceTarget,
) -> None:
    connected(target)
    for subject in ("Queue one", "Queue two", "Queue three", "Queue four", "Queue five"):
        mail(target, subject, mailboxes=(ADELE,))
    sync(target, ADELE)
    now = datetime.now(UTC)
    first, second, later, fresh, other_fresh = sorted(r.activity_id for r in ledger(target))
    with target.database.session() as session:
        for activity_id, when in (
            (first, now - timedelta(minutes=5)),
            (second, now - timedelta(hours=2)),
            (later, now + timedelta(hours=1)),
        ):
            row = session.get(SalesforceActivityRecord, activity_id)
            assert row is not None
            row.next_attempt_at = when

    with target.database.session() as session:
        repo = SalesforceRepository(session, target.organization_id)
        assert [r.activity_id for r in repo.due(now, 10)] == [fresh, other_fresh, second, first]
        assert [r.activity_id for r in repo.due(now, 3)] == [fresh, other_fresh, second]
        assert [r.activity_id for r in repo.due(now, 1)] == [fresh]
