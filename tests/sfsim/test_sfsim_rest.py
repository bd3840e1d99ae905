"""The REST API through the unmodified simple-salesforce client: versions, describe,
CRUD, upsert by external id, SOQL with paging, limits, and Salesforce's errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sfsim import SfServer
from support.sf_clients import sf_client


@pytest.fixture
def client(sf: SfServer) -> Salesforce:
    return sf_client(sf)


def errors_of(raised: pytest.ExceptionInfo[Any]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = raised.value.content
    return content


def test_versions_list_current_api(sf: SfServer) -> None:
    listed = requests.get(f"{sf.url}/services/data").json()
    versions = [v["version"] for v in listed]
    assert "59.0" in versions
    assert listed[versions.index("59.0")]["label"] == "Winter '24"
    assert listed[-1]["url"] == f"/services/data/v{versions[-1]}"


def test_describe_shows_types_external_ids_and_picklists(client: Salesforce) -> None:
    described = client.Contact.describe()
    assert described["keyPrefix"] == "003"
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["LastName"]["nillable"] is False
    assert fields["AccountId"]["type"] == "reference"
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["External_Id__c"]["externalId"] is True
    assert fields["External_Id__c"]["unique"] is True
    assert fields["External_Id__c"]["custom"] is True
    stages = {f["name"]: f for f in client.Opportunity.describe()["fields"]}["StageName"]
    assert "Closed Won" in [p["value"] for p in stages["picklistValues"]]
    prefixes = {o["name"]: o["keyPrefix"] for o in client.describe()["sobjects"]}
    assert prefixes["Account"] == "001"
    assert prefixes["Lead"] == "00Q"
    assert prefixes["EmailMessage"] == "02s"


def test_crud_round_trip_with_18_character_ids(client: Salesforce) -> None:
    created = client.Account.create({"Name": "Tailspin Toys", "Industry": "Retail"})
    assert created["success"] is True
    account_id = created["id"]
    assert len(account_id) == 18 and account_id.startswith("001")
    fetched = client.Account.get(account_id[:15])  # the 15-character form works too
    assert fetched["Id"] == account_id
    assert fetched["Name"] == "Tailspin Toys"
    assert fetched["OwnerId"].startswith("005")
    assert client.Account.update(account_id, {"Website": "https://tailspin.example"}) == 204
    assert client.Account.get(account_id)["Website"] == "https://tailspin.example"
    assert client.Account.delete(account_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        client.Account.get(account_id)
    assert errors_of(gone)[0]["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        client.Account.update(account_id, {"Name": "x"})
    assert errors_of(deleted) == [
        {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}
    ]


def test_upsert_by_external_id_creates_then_updates(client: Salesforce) -> None:
    assert client.Account.upsert("External_Id__c/ACC-9", {"Name": "Wingtip"}) == 201
    assert client.Account.upsert("External_Id__c/ACC-9", {"Name": "Wingtip Toys"}) == 200
    found = client.query("SELECT Id, Name FROM Account WHERE External_Id__c = 'ACC-9'")
    assert found["totalSize"] == 1
    assert found["records"][0]["Name"] == "Wingtip Toys"
    assert client.Account.get_by_custom_id("External_Id__c", "acc-9")["Name"] == "Wingtip Toys"


def test_saves_refused_the_way_salesforce_refuses_them(client: Salesforce, sf: SfServer) -> None:
    with pytest.raises(SalesforceMalformedRequest) as missing:
        client.Contact.create({"FirstName": "No"})
    assert errors_of(missing) == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        client.Contact.create({"LastName": "X", "Nickname": "Y"})
    assert errors_of(unknown)[0]["errorCode"] == "INVALID_FIELD"
    assert (
        errors_of(unknown)[0]["message"] == "No such column 'Nickname' on sobject of type Contact"
    )
    former = next(u for u in sf.state.records.live("User") if not u["IsActive"])
    with pytest.raises(SalesforceMalformedRequest) as inactive:
        client.Contact.create({"LastName": "X", "OwnerId": former["Id"]})
    assert errors_of(inactive)[0]["errorCode"] == "INACTIVE_OWNER_OR_USER"
    with pytest.raises(SalesforceMalformedRequest) as stage:
        client.Opportunity.create({"Name": "X", "StageName": "Won-ish", "CloseDate": "2030-01-01"})
    assert errors_of(stage)[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        client.Account.create({"Name": "Copy", "External_Id__c": "acc-1"})
    assert errors_of(duplicate)[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceMalformedRequest) as wrong_type:
        client.Contact.create({"LastName": "X", "AccountId": former["Id"]})
    assert errors_of(wrong_type)[0]["errorCode"] == "MALFORMED_ID"


def test_soql_relationship_fields_filters_and_order(client: Salesforce) -> None:
    result = client.query(
        "SELECT Name, Email, Account.Name, Owner.Name FROM Contact "
        "WHERE Account.Name LIKE 'fab%' AND Email != null ORDER BY LastName DESC"
    )
    assert result["done"] is True
    assert [r["Name"] for r in result["records"]] == ["Sam Engineer", "Pat Buyer"]
    pat = result["records"][1]
    assert pat["Account"]["Name"] == "Fabrikam"
    assert pat["Account"]["attributes"]["type"] == "Account"
    assert pat["Owner"]["Name"] == "Avery Admin"  # the seed's records belong to its first user
    mixed = client.query(
        "SELECT Id FROM Contact WHERE (LastName = 'buyer' OR LastName IN ('Owner')) "
        "AND CreatedDate > 2020-01-01T00:00:00Z"
    )
    assert mixed["totalSize"] == 2


def test_soql_errors_point_at_the_problem(client: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as field:
        client.query("SELECT Id, Nickname FROM Contact")
    error = errors_of(field)[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert (
        "ERROR at Row:1:Column:12\nNo such column 'Nickname' on entity 'Contact'"
        in error["message"]
    )
    with pytest.raises(SalesforceMalformedRequest) as mixed:
        client.query("SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Title = 'c'")
    assert errors_of(mixed)[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as quoted_date:
        client.query("SELECT Id FROM Contact WHERE CreatedDate > '2020-01-01'")
    assert (
        "must be of type dateTime and should not be enclosed in quotes"
        in errors_of(quoted_date)[0]["message"]
    )
    with pytest.raises(SalesforceMalformedRequest) as table:
        client.query("SELECT Id FROM Contacts")
    assert errors_of(table)[0]["errorCode"] == "INVALID_TYPE"


def test_query_pages_of_2000_with_next_records_url(client: Salesforce, sf: SfServer) -> None:
    store = sf.state.records
    owner = next(store.live("User"))["Id"]
    for n in range(4500):
        store.insert(
            store.object("Lead"), {"LastName": f"L{n:04d}", "Company": "Bulk"}, user_id=owner
        )
    first = client.query("SELECT Id, LastName FROM Lead WHERE Company = 'Bulk'")
    assert first["totalSize"] == 4500
    assert len(first["records"]) == 2000
    assert first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    everything = client.query_all("SELECT Id FROM Lead WHERE Company = 'Bulk'")
    assert len(everything["records"]) == 4500
    assert len({r["Id"] for r in everything["records"]}) == 4500


def test_query_all_includes_deleted_records(client: Salesforce) -> None:
    lead = client.Lead.create({"LastName": "Gone", "Company": "Ghost"})["id"]
    client.Lead.delete(lead)
    assert client.query("SELECT Id FROM Lead WHERE Company = 'Ghost'")["totalSize"] == 0
    deleted = client.query_all(
        "SELECT Id, IsDeleted FROM Lead WHERE Company = 'Ghost'", include_deleted=True
    )
    assert deleted["records"][0]["IsDeleted"] is True


def test_every_answer_carries_api_usage_and_limits_agree(client: Salesforce, sf: SfServer) -> None:
    client.query("SELECT Id FROM Account")
    used = client.api_usage["api-usage"].used
    limits = client.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert limits["DailyApiRequests"]["Remaining"] == 100_000 - (used + 1)


def test_daily_api_limit_is_counted_and_enforced(client: Salesforce, sf: SfServer) -> None:
    requests.patch(f"{sf.url}/_sim/config", json={"daily_api_requests": 3})
    for _ in range(3):  # signing in is not an API request; these three are
        client.query("SELECT Id FROM Account")
    assert client.api_usage["api-usage"].used == 3
    with pytest.raises(SalesforceRefusedRequest) as refused:
        client.query("SELECT Id FROM Account")
    assert errors_of(refused) == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    # The window rolls: a day later the allowance is back.
    requests.post(f"{sf.url}/_sim/clock", json={"advanceSeconds": 24 * 3600 + 1})
    fresh = sf_client(sf)
    assert fresh.query("SELECT COUNT() FROM Account")["totalSize"] == 2
