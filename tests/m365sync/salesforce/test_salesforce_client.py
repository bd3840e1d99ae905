"""The Salesforce client against sfsim, with the unmodified simple-salesforce underneath:
paging, batched lookups, idempotent upserts in batches of 200, composite, describe, change
polling, the API usage header, session renewal, and the budget."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from m365sync.salesforce import (
    ApiBudget,
    JwtBearerFlow,
    SalesforceClient,
    Subrequest,
    in_clause_queries,
    quote_soql,
)
from m365sync.salesforce import errors as sf_errors
from sfsim import SfServer
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_INTEGRATION_USER
from support.salesforce_world import DEMO_KEY, CountingSource, logged, salesforce_settings, sim


def seed_leads(sf: SfServer, count: int, *, with_email: bool = False) -> None:
    store = sf.state.records
    owner = next(store.live("User"))["Id"]
    for n in range(count):
        values = {"LastName": f"L{n:04d}", "Company": "Bulk"}
        if with_email:
            values["Email"] = f"l{n}@bulk.example"
        store.insert(store.object("Lead"), values, user_id=owner)


def todo_tasks(count: int, *, subject: str = "Follow up") -> list[dict[str, object]]:
    return [
        {
            "M365Sync_Todo_Id__c": f"AAMkTodo-{n:04d}",
            "Subject": f"{subject} {n}",
            "Status": "Not Started",
        }
        for n in range(count)
    ]


def test_query_reads_every_page_of_2000_rows(client: SalesforceClient, sf: SfServer) -> None:
    seed_leads(sf, 4500)
    sim(sf, "DELETE", "requests")
    rows = client.query_all("SELECT Id, LastName FROM Lead WHERE Company = 'Bulk'")
    assert len(rows) == 4500
    assert len({r["Id"] for r in rows}) == 4500
    # One query and two nextRecordsUrl pages: three API calls.
    assert len(logged(sf, "/query")) == 3
    pages = client.iter_query("SELECT Id FROM Lead WHERE Company = 'Bulk'")
    assert next(pages)["Id"].startswith("00Q")


def test_lookups_are_split_to_fit_salesforces_uri_limit(
    client: SalesforceClient, sf: SfServer
) -> None:
    seed_leads(sf, 600, with_email=True)
    emails = [f"l{n}@bulk.example" for n in range(600)]
    padded = [*emails, *(f"someone-{n}-{'x' * 60}@elsewhere.example" for n in range(400))]
    sim(sf, "DELETE", "requests")
    found = client.find_by("Lead", "Email", padded, select=("Id", "LastName"))
    assert sorted(r["Email"] for r in found) == sorted(emails)
    queries = logged(sf, "/query")
    assert len(queries) > 1
    assert all(q["status"] == 200 for q in queries)
    assert all(len(q["path"]) + 1 + len(q["query"]) <= 10_000 for q in queries)


def test_in_clause_queries_split_by_encoded_length_and_quote_values() -> None:
    values = [f"v{n}'x" for n in range(1000)]
    queries = in_clause_queries(
        "SELECT Id FROM Lead WHERE Email",
        values,
        path="/services/data/v59.0/query/",
        max_uri_bytes=2000,
    )
    assert len(queries) > 1
    assert sum(q.count("'x") for q in queries) == 1000
    assert all(q.startswith("SELECT Id FROM Lead WHERE Email IN ('v") for q in queries)
    assert quote_soql("it's a \\ test\n") == "'it\\'s a \\\\ test\\n'"


def test_upsert_by_external_id_in_batches_of_200_is_idempotent(
    client: SalesforceClient, sf: SfServer
) -> None:
    tasks = todo_tasks(450)
    sim(sf, "DELETE", "requests")
    first = client.upsert("Task", "M365Sync_Todo_Id__c", tasks)
    assert [r.index for r in first] == list(range(450))
    assert all(r.success and r.created for r in first)
    calls = logged(sf, "/composite/sobjects/Task/M365Sync_Todo_Id__c", method="PATCH")
    assert len(calls) == 3  # 200 + 200 + 50
    again = client.upsert("Task", "M365Sync_Todo_Id__c", tasks)
    assert all(r.success and r.created is False for r in again)
    assert [r.id for r in again] == [r.id for r in first]
    stored = client.query_all("SELECT Id FROM Task WHERE M365Sync_Todo_Id__c LIKE 'AAMkTodo-%'")
    assert len(stored) == 450


def test_each_record_gets_its_own_result(client: SalesforceClient, sf: SfServer) -> None:
    tasks = todo_tasks(3)
    tasks[1]["Subject"] = "x" * 300  # Task.Subject holds 255 characters
    tasks[2]["No_Such_Field__c"] = "?"
    results = client.upsert("Task", "M365Sync_Todo_Id__c", tasks)
    assert [r.success for r in results] == [True, False, False]
    too_long = results[1].error
    assert isinstance(too_long, sf_errors.RecordRejected)
    assert too_long.code == "STRING_TOO_LONG"
    assert too_long.record == "Task M365Sync_Todo_Id__c 'AAMkTodo-0001'"
    assert "AAMkTodo-0001" in too_long.message
    unknown = results[2].error
    assert isinstance(unknown, sf_errors.FieldMissing)
    assert unknown.category == sf_errors.ErrorCategory.NEEDS_PERSON
    assert "Fields & Relationships" in (unknown.fix or "")
    # All or none: the good record is rolled back with the bad one.
    rolled = client.create("Task", [{"Subject": "fine"}, {"Subject": "y" * 300}], all_or_none=True)
    assert isinstance(rolled[0].error, sf_errors.Transient)
    assert rolled[1].error is not None and rolled[1].error.code == "STRING_TOO_LONG"


def test_create_and_update_in_batches(client: SalesforceClient, sf: SfServer) -> None:
    created = client.create("Account", [{"Name": f"Co {n}"} for n in range(205)])
    assert all(r.success and r.id and r.id.startswith("001") for r in created)
    updates = [{"Id": r.id, "Industry": "Retail"} for r in created]
    assert all(r.success for r in client.update("Account", updates))
    retail = client.query_all("SELECT Id FROM Account WHERE Industry = 'Retail'")
    assert len(retail) == 205 + 1  # Northwind Traders was Retail already


def test_composite_runs_dependent_subrequests_in_one_call(
    client: SalesforceClient, sf: SfServer
) -> None:
    sim(sf, "DELETE", "requests")
    results = client.composite(
        [
            Subrequest("POST", "sobjects/Account", "acct", body={"Name": "Contoso"}),
            Subrequest(
                "POST",
                "sobjects/Contact",
                "pat",
                body={"LastName": "Buyer", "AccountId": "@{acct.id}"},
            ),
            Subrequest("GET", "sobjects/Contact/@{pat.id}?fields=AccountId", "check"),
            Subrequest("POST", "sobjects/Contact", "broken", body={"FirstName": "No last name"}),
        ]
    )
    assert [r.status for r in results] == [201, 201, 200, 400]
    assert results[2].body["AccountId"] == results[0].body["id"]
    assert isinstance(results[3].error, sf_errors.RequiredFieldMissing)
    assert "LastName" in results[3].error.message
    assert len(logged(sf, "/composite")) == 1
    assert client.api_usage is not None and client.api_usage.used == 1
    with pytest.raises(ValueError, match="at most 25"):
        client.composite([Subrequest("GET", "limits", f"r{n}") for n in range(26)])


def test_every_answer_records_the_orgs_api_usage(client: SalesforceClient, sf: SfServer) -> None:
    assert client.api_usage is None
    client.query_all("SELECT Id FROM Account")
    used, limit = sf.state.api_usage()
    assert client.api_usage is not None
    assert (client.api_usage.used, client.api_usage.limit) == (used, limit)
    limits = client.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert client.api_usage.used == used + 1


def test_describe_is_cached(client: SalesforceClient, sf: SfServer) -> None:
    sim(sf, "DELETE", "requests")
    fields = {f["name"]: f for f in client.describe("EmailMessage")["fields"]}
    assert fields["M365Sync_Message_Id__c"]["externalId"] is True
    assert fields["M365Sync_Message_Id__c"]["unique"] is True
    client.describe("EmailMessage")
    assert "Task" in {o["name"] for o in client.describe_global()["sobjects"]}
    client.describe_global()
    assert len(logged(sf, "/sobjects")) == 2
    client.forget_describes()
    client.describe("EmailMessage")
    assert len(logged(sf, "/sobjects")) == 3


def test_change_polling(client: SalesforceClient, sf: SfServer) -> None:
    start = sf.state.now() - timedelta(minutes=5)
    kept, dropped = (
        r.id for r in client.create("Task", [{"Subject": "Kept"}, {"Subject": "Gone"}])
    )
    assert kept and dropped
    store = sf.state.records
    store.delete(store.object("Task"), dropped, user_id=next(store.live("User"))["Id"])
    sim(sf, "POST", "clock", json={"advanceSeconds": 120})
    end = sf.state.now()
    changed = client.updated("Task", start, end)
    assert kept in changed.ids
    assert changed.latest_date_covered <= end
    gone = client.deleted("Task", start, end)
    assert [d.id for d in gone.records] == [dropped]
    assert gone.earliest_date_available <= end
    with pytest.raises(ValueError, match="timezone-aware"):
        client.updated("Task", start.replace(tzinfo=None), end)


def test_a_window_with_too_many_ids_is_narrowed_to_whole_minutes(
    client: SalesforceClient, sf: SfServer
) -> None:
    sim(sf, "PATCH", "config", json={"replication_id_limit": 2})
    start = sf.state.now() - timedelta(minutes=10)
    made: list[str] = []
    for minute in range(3):
        made += [str(r.id) for r in client.create("Task", [{"Subject": f"Mass {minute}"}] * 2)]
        sim(sf, "POST", "clock", json={"advanceSeconds": 60})
    sim(sf, "POST", "clock", json={"advanceSeconds": 60})
    end = sf.state.now()

    first = client.updated("Task", start, end)
    assert first.narrowed_to is not None and first.narrowed_to < end
    assert (first.narrowed_to.second, first.narrowed_to.microsecond) == (0, 0)
    assert first.latest_date_covered <= first.narrowed_to
    assert len(first.ids) <= 2

    answers = list(client.updated_windows("Task", start, end))
    assert sorted(i for a in answers for i in a.ids) == sorted(made)  # each once
    assert answers[-1].narrowed_to is None

    sim(sf, "PATCH", "config", json={"replication_id_limit": 1})
    with pytest.raises(sf_errors.TooManyIds, match="within one minute") as refused:
        list(client.updated_windows("Task", start, end))
    assert refused.value.fix is not None and "mass change" in refused.value.fix


def test_expired_session_is_renewed_once_and_the_call_retried(
    client: SalesforceClient, sf: SfServer, jwt_source: CountingSource
) -> None:
    client.query_all("SELECT Id FROM Account")
    first = client.token
    sim(sf, "POST", "sessions/expire")
    assert len(client.query_all("SELECT Id FROM Account")) == 2
    assert client.token.access_token != first.access_token
    assert len(jwt_source.issued) == 2
    # Refused twice in a row: one renewal, one retry, then the error, in words.
    sim(sf, "POST", "faults", json={"kind": "INVALID_SESSION_ID", "count": 2})
    with pytest.raises(sf_errors.SessionExpired) as refused:
        client.query_all("SELECT Id FROM Account")
    assert "just issued" in refused.value.message
    assert len(jwt_source.issued) == 3


@pytest.mark.parametrize(
    ("fault", "category"),
    [
        ({"kind": "UNABLE_TO_LOCK_ROW"}, sf_errors.Transient),
        ({"kind": "SERVER_UNAVAILABLE"}, sf_errors.Transient),
        ({"kind": "UNKNOWN_EXCEPTION"}, sf_errors.Transient),
        ({"kind": "drop"}, sf_errors.Transient),
        ({"kind": "REQUEST_LIMIT_EXCEEDED"}, sf_errors.LimitExceeded),
    ],
)
def test_injected_failures_are_classified(
    client: SalesforceClient, sf: SfServer, fault: dict[str, object], category: type[Exception]
) -> None:
    client.query_all("SELECT Id FROM Account")
    sim(sf, "POST", "faults", json=fault)
    with pytest.raises(category) as raised:
        client.query_all("SELECT Id FROM Account")
    assert raised.value.fix
    assert len(client.query_all("SELECT Id FROM Account")) == 2  # it was a passing fault


def test_a_whole_batch_refused_fails_each_record_and_sends_no_more(
    client: SalesforceClient, sf: SfServer
) -> None:
    sim(sf, "POST", "faults", json={"kind": "UNABLE_TO_LOCK_ROW", "method": "PATCH"})
    results = client.upsert("Task", "M365Sync_Todo_Id__c", todo_tasks(250))
    assert len(results) == 250
    assert all(isinstance(r.error, sf_errors.Transient) for r in results)
    assert results[0].error is not None and results[0].error.code == "UNABLE_TO_LOCK_ROW"
    assert client.query_all("SELECT Id FROM Task WHERE M365Sync_Todo_Id__c != null") == []


def test_records_salesforce_refuses_name_the_record_and_the_rule(
    client: SalesforceClient, sf: SfServer
) -> None:
    sim(
        sf,
        "POST",
        "seed",
        json={
            "validationRules": [
                {
                    "object": "Task",
                    "name": "Subject_Needs_Prefix",
                    "field": "Subject",
                    "kind": "pattern",
                    "pattern": "^\\[CRM\\].*",
                    "message": "Subjects start with [CRM].",
                }
            ],
        },
    )
    refused = client.upsert("Task", "M365Sync_Todo_Id__c", todo_tasks(1))[0].error
    assert isinstance(refused, sf_errors.ValidationRuleFailed)
    assert '"Subjects start with [CRM]."' in refused.message
    assert "Task M365Sync_Todo_Id__c 'AAMkTodo-0000'" in refused.message
    assert "Object Manager → Task → Validation Rules" in (refused.fix or "")
    twin = {"LastName": "Twin", "Email": "pat@fabrikam.example"}
    duplicate = client.create("Contact", [twin])[0].error
    assert isinstance(duplicate, sf_errors.DuplicateDetected)
    assert "The duplicate rule Standard_Contact_Duplicate_Rule" in duplicate.message
    assert "Duplicate Rules → Standard_Contact_Duplicate_Rule" in (duplicate.fix or "")
    assert client.create("Contact", [twin], allow_duplicates=True)[0].success
    contact = client.create("Contact", [{"LastName": "Gone"}])[0].id
    assert contact
    sf.state.records.delete(
        sf.state.records.object("Contact"),
        contact,
        user_id=next(sf.state.records.live("User"))["Id"],
    )
    orphan = client.create("Task", [{"Subject": "[CRM] call", "WhoId": contact}])[0].error
    assert isinstance(orphan, sf_errors.RelatedRecordGone)
    missing = client.create("Contact", [{"FirstName": "No last name"}])[0].error
    assert isinstance(missing, sf_errors.RequiredFieldMissing)
    sim(sf, "PATCH", "config", json={"data_storage_mb": 0})
    full = client.create("Task", [{"Subject": "[CRM] no room"}])[0].error
    assert isinstance(full, sf_errors.StorageFull)
    assert "Storage Usage" in (full.fix or "")


def test_queries_refused_for_a_missing_field_or_record(client: SalesforceClient) -> None:
    with pytest.raises(sf_errors.FieldMissing) as no_field:
        client.query_all("SELECT Id, M365Sync_Nope__c FROM Task")
    assert no_field.value.http_status == 400
    with pytest.raises(sf_errors.NotFound):
        client.describe("Nope__c")


def test_the_orgs_own_limit_says_when_calls_resume(client: SalesforceClient, sf: SfServer) -> None:
    sim(sf, "PATCH", "config", json={"daily_api_requests": 3})
    for _ in range(3):
        client.query_all("SELECT Id FROM Account")
    with pytest.raises(sf_errors.LimitExceeded) as refused:
        client.query_all("SELECT Id FROM Account")
    error = refused.value
    assert error.code == "REQUEST_LIMIT_EXCEEDED"
    assert error.usage is not None and (error.usage.used, error.usage.limit) == (3, 3)
    assert error.resumes_at is not None
    assert "rolling 24-hour window frees calls" in (error.fix or "")


def test_the_budget_stops_at_m365syncs_share(sf: SfServer, tmp_path: Path) -> None:
    settings = salesforce_settings(sf, tmp_path, salesforce_api_share=0.5)
    sim(sf, "PATCH", "config", json={"daily_api_requests": 10})
    budget = ApiBudget(settings.salesforce_api_share)
    source = CountingSource(
        JwtBearerFlow(
            settings,
            consumer_key=SALESFORCE_CONSUMER_KEY,
            username=SALESFORCE_INTEGRATION_USER,
            signing_key=DEMO_KEY,
        )
    )
    with SalesforceClient(settings, source, budget=budget) as client:
        for _ in range(5):
            client.query_all("SELECT Id FROM Account")
        sim(sf, "DELETE", "requests")
        with pytest.raises(sf_errors.ApiShareUsed) as refused:
            client.query_all("SELECT Id FROM Account")
    assert logged(sf, "/services/data") == []  # refused before reaching Salesforce
    error = refused.value
    assert error.category == sf_errors.ErrorCategory.LIMIT_EXCEEDED
    assert "5 of its 10" in error.message
    assert "50%" in error.message
    assert error.resumes_at is not None
    assert "share" in (error.fix or "")
    # Writes report the refusal on every record instead of raising.
    with SalesforceClient(settings, source, budget=budget) as client:
        results = client.create("Task", [{"Subject": "later"}])
    assert isinstance(results[0].error, sf_errors.ApiShareUsed)
