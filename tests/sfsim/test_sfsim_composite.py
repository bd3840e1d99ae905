"""sObject Collections and composite through simple-salesforce's ``restful()``."""

from __future__ import annotations

import json

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfsim import SfServer
from support.sf_clients import sf_client


@pytest.fixture
def client(sf: SfServer) -> Salesforce:
    return sf_client(sf)


def _accounts(count: int, prefix: str = "Batch") -> list[dict[str, object]]:
    return [{"attributes": {"type": "Account"}, "Name": f"{prefix} {n}"} for n in range(count)]


def test_collection_creates_200_and_refuses_201(client: Salesforce) -> None:
    results = client.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps({"allOrNone": False, "records": _accounts(200)}),
    )
    assert len(results) == 200 and all(r["success"] for r in results)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client.restful(
            "composite/sobjects", method="POST", data=json.dumps({"records": _accounts(201)})
        )
    assert refused.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_collection_all_or_none_rolls_back_every_record(client: Salesforce) -> None:
    records = [*_accounts(2, "Atomic"), {"attributes": {"type": "Contact"}, "FirstName": "NoLast"}]
    results = client.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps({"allOrNone": True, "records": records}),
    )
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert client.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Atomic%'")["totalSize"] == 0
    partial = client.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps({"allOrNone": False, "records": records}),
    )
    assert [r["success"] for r in partial] == [True, True, False]


def test_collection_upsert_by_external_id(client: Salesforce) -> None:
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Account"}, "External_Id__c": "ACC-1", "Name": "Fabrikam Inc."},
            {
                "attributes": {"type": "Account"},
                "External_Id__c": "ACC-77",
                "Name": "Adventure Works",
            },
        ],
    }
    results = client.restful(
        "composite/sobjects/Account/External_Id__c", method="PATCH", data=json.dumps(body)
    )
    assert [(r["success"], r["created"]) for r in results] == [(True, False), (True, True)]
    names = client.query(
        "SELECT Name FROM Account WHERE External_Id__c IN ('ACC-1','ACC-77') ORDER BY Name"
    )
    assert [r["Name"] for r in names["records"]] == ["Adventure Works", "Fabrikam Inc."]


def test_composite_with_references(client: Salesforce) -> None:
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Litware"},
            },
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Contact",
                "referenceId": "person",
                "body": {"LastName": "Lit", "AccountId": "@{acct.id}"},
            },
            {
                "method": "GET",
                "referenceId": "check",
                "url": "/services/data/v59.0/query?q="
                "SELECT+Account.Name+FROM+Contact+WHERE+Id='@{person.id}'",
            },
        ],
    }
    answer = client.restful("composite", method="POST", data=json.dumps(body))["compositeResponse"]
    assert [a["httpStatusCode"] for a in answer] == [201, 201, 200]
    assert answer[2]["body"]["records"][0]["Account"]["Name"] == "Litware"


def test_composite_all_or_none_halts_and_rolls_back(client: Salesforce, sf: SfServer) -> None:
    used_before = sf.state.api_usage()[0]
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Account",
                "referenceId": "a",
                "body": {"Name": "Rolled Back Ltd"},
            },
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Contact",
                "referenceId": "c",
                "body": {"FirstName": "Missing"},
            },
        ],
    }
    answer = client.restful("composite", method="POST", data=json.dumps(body))["compositeResponse"]
    assert answer[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert answer[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert (
        client.query("SELECT COUNT() FROM Account WHERE Name = 'Rolled Back Ltd'")["totalSize"] == 0
    )
    assert sf.state.api_usage()[0] == used_before + 2  # the composite counted once, then the query


def test_composite_takes_at_most_25_subrequests(client: Salesforce) -> None:
    subrequests = [
        {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": f"r{n}"}
        for n in range(26)
    ]
    with pytest.raises(SalesforceMalformedRequest):
        client.restful(
            "composite", method="POST", data=json.dumps({"compositeRequest": subrequests})
        )


def test_collection_duplicate_errors_carry_the_duplicate_result(client: Salesforce) -> None:
    results = client.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps(
            {
                "records": [
                    {
                        "attributes": {"type": "Contact"},
                        "LastName": "Twin",
                        "Email": "pat@fabrikam.example",
                    }
                ]
            }
        ),
    )
    error = results[0]["errors"][0]
    assert error["statusCode"] == "DUPLICATES_DETECTED"
    assert error["duplicateResult"]["duplicateRule"] == "Standard_Contact_Duplicate_Rule"
    assert error["duplicateResult"]["matchResults"][0]["size"] == 1
