"""Packed creates (five sObject Collections in one composite call) and deletes by id."""

from __future__ import annotations

from m365sync.salesforce import SalesforceClient
from m365sync.salesforce import errors as sf_errors
from sfsim import SfServer
from support.salesforce_world import logged, sim


def test_a_thousand_records_cost_one_call_and_each_answers_for_itself(
    client: SalesforceClient, sf: SfServer
) -> None:
    account = client.query_all("SELECT Id FROM Account WHERE Name = 'Fabrikam'")[0]["Id"]
    records = [("Contact", {"LastName": f"Packed {n}", "AccountId": account}) for n in range(999)]
    records.insert(500, ("Contact", {"FirstName": "No last name"}))
    sim(sf, "DELETE", "requests")
    results = client.create_many(records)
    assert len(logged(sf, "/composite")) == 1
    assert [r.index for r in results] == list(range(1000))
    assert sum(r.success for r in results) == 999
    refused = results[500]
    assert not refused.success and isinstance(refused.error, sf_errors.RequiredFieldMissing)
    assert all(r.id and r.id.startswith("003") for r in results if r.success)
    more = client.create_many([("Account", {"Name": f"A{n}"}) for n in range(1001)])
    assert sum(r.success for r in more) == 1001
    assert len(logged(sf, "/composite")) == 3


def test_delete_by_id_reports_what_was_already_gone(client: SalesforceClient, sf: SfServer) -> None:
    created = client.create("Account", [{"Name": "Short-lived"}, {"Name": "Also"}])
    ids = [r.id for r in created if r.id]
    first = client.delete(ids)
    assert [r.success for r in first] == [True, True]
    again = client.delete(ids[:1])
    assert not again[0].success
    assert again[0].error is not None
    assert again[0].error.category == sf_errors.ErrorCategory.NEEDS_PERSON
