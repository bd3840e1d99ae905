"""Salesforce's rules that an activity integration meets: a sent EmailMessage keeps what it
was sent with, an org without Enhanced Email has no EmailMessage, an Event's WhoId is one of
its EventRelations, and a composite carries at most five sObject Collections or queries."""

from __future__ import annotations

import json

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from sfsim import SfServer
from support.sf_clients import sf_client


@pytest.fixture
def client(sf: SfServer) -> Salesforce:
    return sf_client(sf)


def _email(client: Salesforce, status: str, key: str) -> str:
    return str(
        client.EmailMessage.create(
            {"Subject": "Quote", "Status": status, "M365Sync_Message_Id__c": key}
        )["id"]
    )


def test_a_sent_email_changes_only_its_custom_fields(client: Salesforce) -> None:
    sent = _email(client, "3", "<sent@acme.example>")
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client.EmailMessage.update(sent, {"Subject": "Quote, corrected"})
    assert refused.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert refused.value.content[0]["fields"] == ["Subject"]
    client.EmailMessage.update(sent, {"M365_Id__c": "AAMk-2", "Subject": "Quote"})
    assert client.EmailMessage.get(sent)["M365_Id__c"] == "AAMk-2"
    # Upserting it again by its external id with new standard values is an update: refused.
    with pytest.raises(SalesforceMalformedRequest):
        client.EmailMessage.upsert(
            "M365Sync_Message_Id__c/<sent@acme.example>", {"Subject": "Other"}
        )
    unread = _email(client, "0", "<new@acme.example>")
    client.EmailMessage.update(unread, {"Status": "1"})
    draft = _email(client, "5", "<draft@acme.example>")
    client.EmailMessage.update(draft, {"Subject": "Still a draft"})
    assert client.EmailMessage.get(draft)["Subject"] == "Still a draft"


def test_an_org_without_enhanced_email_has_no_email_message(
    client: Salesforce, sf: SfServer
) -> None:
    answer = requests.post(f"{sf.url}/_sim/seed", json={"org": {"enhancedEmail": False}})
    assert answer.json()["enhancedEmail"] is False
    names = {o["name"] for o in client.describe()["sobjects"]}
    assert "EmailMessage" not in names and "EmailMessageRelation" not in names
    assert "Task" in names
    with pytest.raises(SalesforceResourceNotFound):
        client.EmailMessage.describe()
    with pytest.raises(SalesforceMalformedRequest) as query:
        client.query("SELECT Id FROM EmailMessage")
    assert query.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_a_composite_carries_at_most_five_collections_or_queries(client: Salesforce) -> None:
    def collection(n: int) -> dict[str, object]:
        return {
            "method": "POST",
            "url": "/services/data/v59.0/composite/sobjects",
            "referenceId": f"c{n}",
            "body": {"records": [{"attributes": {"type": "Account"}, "Name": f"Packed {n}"}]},
        }

    five = client.restful(
        "composite",
        method="POST",
        data=json.dumps({"compositeRequest": [collection(n) for n in range(5)]}),
    )
    assert [r["httpStatusCode"] for r in five["compositeResponse"]] == [200] * 5
    query = {
        "method": "GET",
        "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Account",
        "referenceId": "q",
    }
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client.restful(
            "composite",
            method="POST",
            data=json.dumps({"compositeRequest": [*(collection(n) for n in range(5)), query]}),
        )
    assert refused.value.content[0]["errorCode"] == "INVALID_INPUT"


def test_an_events_contact_is_one_of_its_relations(client: Salesforce) -> None:
    pat = client.query("SELECT Id FROM Contact WHERE Email = 'pat@fabrikam.example'")["records"]
    who = pat[0]["Id"]
    event = client.Event.create(
        {
            "Subject": "Review",
            "StartDateTime": "2030-05-01T10:00:00Z",
            "EndDateTime": "2030-05-01T11:00:00Z",
            "WhoId": who,
        }
    )["id"]
    (relation,) = client.query(
        f"SELECT RelationId, IsParent, IsInvitee FROM EventRelation WHERE EventId = '{event}'"
    )["records"]
    assert (relation["RelationId"], relation["IsParent"], relation["IsInvitee"]) == (
        who,
        True,
        False,
    )
    with pytest.raises(SalesforceMalformedRequest) as again:
        client.EventRelation.create({"EventId": event, "RelationId": who})
    assert again.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
