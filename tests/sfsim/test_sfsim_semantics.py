"""Object semantics: Enhanced Email, events, rules an admin switches on, converted leads,
change polling, and injected faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from sfsim import SfServer
from support.sf_clients import sf_client


@pytest.fixture
def client(sf: SfServer) -> Salesforce:
    return sf_client(sf)


def _contact(client: Salesforce, email: str) -> str:
    found = client.query(f"SELECT Id FROM Contact WHERE Email = '{email}'")["records"]
    return str(found[0]["Id"])


def test_email_message_creates_its_task_and_relations(client: Salesforce) -> None:
    account = client.query("SELECT Id FROM Account WHERE Name = 'Fabrikam'")["records"][0]["Id"]
    email = client.EmailMessage.create(
        {
            "Subject": "Quote",
            "TextBody": "Here it is",
            "FromAddress": "riley@acme.example",
            "ToAddress": "pat@fabrikam.example",
            "Status": "3",
            "MessageDate": "2030-05-01T09:30:00Z",
            "MessageIdentifier": "<abc@acme.example>",
            "ThreadIdentifier": "<abc@acme.example>",
            "RelatedToId": account,
            "M365_Id__c": "AAMk-1",
        }
    )["id"]
    assert email.startswith("02s")
    relation = client.EmailMessageRelation.create(
        {
            "EmailMessageId": email,
            "RelationId": _contact(client, "pat@fabrikam.example"),
            "RelationType": "ToAddress",
        }
    )
    assert relation["success"]
    saved = client.query(
        "SELECT ActivityId, Activity.Subject, Activity.TaskSubtype, Activity.Status, "
        f"Activity.WhatId FROM EmailMessage WHERE Id = '{email}'"
    )["records"][0]
    assert saved["Activity"]["Subject"] == "Email: Quote"
    assert saved["Activity"]["TaskSubtype"] == "Email"
    assert saved["Activity"]["Status"] == "Completed"
    assert saved["Activity"]["WhatId"] == account
    with pytest.raises(SalesforceMalformedRequest) as bad_status:
        client.EmailMessage.create({"Subject": "x", "Status": "9"})
    assert bad_status.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_event_duration_follows_start_and_end(client: Salesforce) -> None:
    event = client.Event.create(
        {
            "Subject": "Demo",
            "StartDateTime": "2030-05-01T10:00:00Z",
            "EndDateTime": "2030-05-01T11:30:00Z",
        }
    )["id"]
    assert client.Event.get(event)["DurationInMinutes"] == 90
    client.Event.update(event, {"StartDateTime": "2030-05-02T10:00:00Z"})
    moved = client.Event.get(event)
    assert moved["EndDateTime"] == "2030-05-02T11:30:00.000+0000"
    with pytest.raises(SalesforceMalformedRequest) as no_end:
        client.Event.create({"Subject": "Open-ended", "StartDateTime": "2030-05-01T10:00:00Z"})
    assert no_end.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    relation = client.EventRelation.create(
        {"EventId": event, "RelationId": _contact(client, "pat@fabrikam.example")}
    )
    assert relation["id"].startswith("0RE")


def test_validation_rule_from_the_seed(client: Salesforce, sf: SfServer) -> None:
    requests.post(
        f"{sf.url}/_sim/seed",
        json={
            "validationRules": [
                {
                    "object": "Contact",
                    "name": "Email_Required",
                    "field": "Email",
                    "kind": "required",
                    "message": "Contacts need an email address.",
                }
            ]
        },
    )
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client.Contact.create({"LastName": "Mailless"})
    assert refused.value.content == [
        {
            "message": "Contacts need an email address.",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Email"],
        }
    ]


def test_duplicate_rule_alert_can_be_overridden_block_cannot(
    client: Salesforce, sf: SfServer
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as alerted:
        client.Contact.create({"LastName": "Again", "Email": "PAT@fabrikam.example"})
    error = alerted.value.content[0]
    assert error["errorCode"] == "DUPLICATES_DETECTED"
    assert error["duplicateResult"]["allowSave"] is True
    created = client.Contact.create(
        {"LastName": "Again", "Email": "pat@fabrikam.example"},
        headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
    )
    assert created["success"]
    for rule in sf.state.records.duplicate_rules:
        rule.action = "block"
    with pytest.raises(SalesforceMalformedRequest) as blocked:
        client.Contact.create(
            {"LastName": "Third", "Email": "pat@fabrikam.example"},
            headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
        )
    assert blocked.value.content[0]["duplicateResult"]["allowSave"] is False


def test_converted_lead_cannot_be_updated(client: Salesforce, sf: SfServer) -> None:
    lead = client.query("SELECT Id FROM Lead")["records"][0]["Id"]
    converted = requests.post(f"{sf.url}/_sim/leads/{lead}/convert", json={}).json()
    assert converted["contactId"].startswith("003")
    row = client.Lead.get(lead)
    assert row["IsConverted"] is True and row["ConvertedContactId"] == converted["contactId"]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client.Lead.update(lead, {"Title": "CEO"})
    assert refused.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_updated_and_deleted_polling(client: Salesforce, sf: SfServer) -> None:
    start = sf.state.now() - timedelta(minutes=5)
    account = client.Account.create({"Name": "Polled"})["id"]
    contact = client.Contact.create({"LastName": "Polled", "AccountId": account})["id"]
    client.Contact.delete(contact)
    # Seconds are ignored and the current minute is not covered yet: poll a bit later.
    requests.post(f"{sf.url}/_sim/clock", json={"advanceSeconds": 120})
    end = sf.state.now()
    assert account in client.Account.updated(start, end)["ids"]
    gone = client.Contact.deleted(start, end)
    assert [d["id"] for d in gone["deletedRecords"]] == [contact]
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(gone)
    with pytest.raises(SalesforceMalformedRequest) as too_old:
        client.Account.updated(datetime.now(UTC) - timedelta(days=31), datetime.now(UTC))
    assert too_old.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_injected_faults_answer_like_salesforce(client: Salesforce, sf: SfServer) -> None:
    requests.post(f"{sf.url}/_sim/faults", json={"kind": "UNABLE_TO_LOCK_ROW", "method": "PATCH"})
    account = client.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as locked:
        client.Account.update(account, {"Name": "Busy"})
    assert locked.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert client.Account.update(account, {"Name": "Busy"}) == 204  # the fault fired once
    requests.post(f"{sf.url}/_sim/faults", json={"kind": "SERVER_UNAVAILABLE"})
    with pytest.raises(SalesforceGeneralError) as unavailable:
        client.query("SELECT Id FROM Account")
    assert unavailable.value.status == 503


def test_storage_limit(client: Salesforce, sf: SfServer) -> None:
    requests.patch(f"{sf.url}/_sim/config", json={"data_storage_mb": 0})
    with pytest.raises(SalesforceMalformedRequest) as full:
        client.Account.create({"Name": "No room"})
    assert full.value.content[0]["errorCode"] == "STORAGE_LIMIT_EXCEEDED"


def test_a_window_with_more_ids_than_the_limit_is_refused(client: Salesforce, sf: SfServer) -> None:
    assert requests.get(f"{sf.url}/_sim/config").json()["replication_id_limit"] == 600_000
    requests.patch(f"{sf.url}/_sim/config", json={"replication_id_limit": 2}).raise_for_status()
    start = sf.state.now() - timedelta(minutes=5)
    made = [client.Account.create({"Name": f"Mass {n}"})["id"] for n in range(3)]
    requests.post(f"{sf.url}/_sim/clock", json={"advanceSeconds": 120})

    def refused(poll: Any) -> dict[str, Any]:
        with pytest.raises(SalesforceMalformedRequest) as error:
            poll(start, sf.state.now())
        assert error.value.status == 400
        (entry,) = error.value.content
        return dict(entry)

    changed = refused(client.Account.updated)
    assert changed["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert "closer together" in changed["message"]
    for account in made:
        client.Account.delete(account)
    requests.post(f"{sf.url}/_sim/clock", json={"advanceSeconds": 120})
    assert refused(client.Account.deleted)["errorCode"] == "EXCEEDED_ID_LIMIT"

    requests.patch(f"{sf.url}/_sim/config", json={"replication_id_limit": 3}).raise_for_status()
    gone = client.Account.deleted(start, sf.state.now())["deletedRecords"]
    assert sorted(d["id"] for d in gone) == sorted(made)
