"""The unresolved queue against m365sim and sfsim: meetings and emails with people who are
no Salesforce Contact or Lead wait for their rep, who relates the address to a record,
creates a Lead, or dismisses it; the choice holds for what waits and what comes later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from m365sync.crm.salesforce_unresolved import (
    create_lead_for_address,
    dismiss_address,
    find_salesforce_records,
    relate_address,
    unresolved_items,
)
from m365sync.errors import ValidationFailed
from m365sync.sync.features import SyncFeature
from support.salesforce_target_world import ADELE, PAT, SalesforceTarget

STRANGER = "jo@prospect.example"


def connected(target: SalesforceTarget) -> None:
    report = target.connect()
    assert report.ok, report.failures()
    target.mirror()


def meeting_with(target: SalesforceTarget, address: str, subject: str, days: int = 2) -> None:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)

    def at(value: datetime) -> dict[str, str]:
        return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

    target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": subject,
            "start": at(start),
            "end": at(start + timedelta(hours=1)),
            "attendees": [{"emailAddress": {"address": address}}],
        },
    ).raise_for_status()
    result = target.sync.sync(ADELE, SyncFeature.CALENDAR)
    assert result.outcome == "ok", (result.error, result.fix)


def queue(target: SalesforceTarget) -> list[Any]:
    with target.database.session() as session:
        return unresolved_items(session, target.organization_id, target.sync.members[ADELE])


def test_a_meeting_with_a_stranger_waits_until_its_rep_relates_the_address(
    target: SalesforceTarget,
) -> None:
    connected(target)
    meeting_with(target, STRANGER, "Intro with Jo")
    assert target.drain().unmatched == 1
    assert target.records("Event") == []

    (item,) = queue(target)
    assert (item.kind, item.subject, item.addresses) == ("event", "Intro with Jo", [STRANGER])

    with target.database.session() as session:
        found = find_salesforce_records(session, target.organization_id, "pat")
        pat = next(r for r in found if r.sobject == "Contact" and PAT in r.label)
        decision = relate_address(
            session, target.organization_id, target.sync.members[ADELE], STRANGER, pat.salesforce_id
        )
    assert decision.requeued == 1

    assert target.drain().synced == 1
    (event,) = target.records("Event")
    assert event["WhoId"] == pat.salesforce_id
    assert queue(target) == []

    # Later mail from the address follows the choice (logged although only mail with
    # known people is, and related to Pat).
    target.sync.deliver(
        ADELE,
        **{
            "from": STRANGER,
            "to": [ADELE],
            "subject": "Following up",
            "internetMessageId": "<following-up@prospect.example>",
        },
    )
    result = target.sync.sync(ADELE, SyncFeature.EMAIL)
    assert result.outcome == "ok", (result.error, result.fix)
    assert target.drain().synced == 1
    (email,) = target.records("EmailMessage")
    assert email["Subject"] == "Following up"
    related = {r["RelationId"] for r in target.records("EmailMessageRelation")}
    assert pat.salesforce_id in related


def test_a_dismissed_address_leaves_the_queue_and_nothing_is_written(
    target: SalesforceTarget,
) -> None:
    connected(target)
    meeting_with(target, STRANGER, "Vendor pitch")
    target.drain()

    with target.database.session() as session:
        dismiss_address(session, target.organization_id, target.sync.members[ADELE], STRANGER)

    assert queue(target) == []
    meeting_with(target, STRANGER, "Vendor pitch again", days=3)
    target.drain()
    assert queue(target) == []
    assert target.records("Event") == []


def test_one_click_makes_a_lead_once_and_relates_whats_waiting(target: SalesforceTarget) -> None:
    connected(target)
    meeting_with(target, STRANGER, "Discovery call")
    target.drain()
    leads_before = len(target.records("Lead"))

    for _ in range(2):  # a second click finds the Lead instead of making another
        with target.database.session() as session:
            decision = create_lead_for_address(
                session,
                target.organization_id,
                target.sync.members[ADELE],
                STRANGER,
                name="Jo Prospect",
                settings=target.settings,
                box=target.box,
            )

    leads = [r for r in target.records("Lead") if r["Email"] == STRANGER]
    assert len(target.records("Lead")) == leads_before + 1
    (lead,) = leads
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == (
        "Jo",
        "Prospect",
        "prospect.example",
    )
    assert lead["OwnerId"] == target.user_id("adele@acme.example")
    assert decision.salesforce_id == lead["Id"]
    assert target.drain().synced == 1
    (event,) = target.records("Event")
    assert event["WhoId"] == lead["Id"]


def test_a_search_needs_two_letters(target: SalesforceTarget) -> None:
    connected(target)
    with target.database.session() as session, pytest.raises(ValidationFailed) as refused:
        find_salesforce_records(session, target.organization_id, "p")
    assert "two letters" in refused.value.message
