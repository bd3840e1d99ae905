"""Every Salesforce call m365sync makes is counted for Prometheus, by operation and outcome
(``m365sync_salesforce_calls_total``), against sfsim with the real client."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from m365sync.salesforce import SalesforceClient
from m365sync.salesforce import errors as sf_errors
from m365sync.salesforce._http import operation_of
from sfsim import SfServer
from support.salesforce_world import sim


def calls(operation: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "m365sync_salesforce_calls_total", {"operation": operation, "outcome": outcome}
    )
    return value or 0.0


def counted(*labels: tuple[str, str]) -> dict[tuple[str, str], float]:
    return {label: calls(*label) for label in labels}


def test_calls_are_counted_by_operation_and_outcome(client: SalesforceClient, sf: SfServer) -> None:
    labels = [
        ("token", "ok"),
        ("query", "ok"),
        ("collections", "ok"),
        ("describe", "ok"),
        ("limits", "ok"),
        ("query", "session_expired"),
        ("query", "limit_exceeded"),
        ("query", "transient"),
    ]
    before = counted(*labels)

    client.query_all("SELECT Id FROM Account")
    client.upsert("Task", "M365Sync_Todo_Id__c", [{"M365Sync_Todo_Id__c": "t-1", "Subject": "a"}])
    client.describe("Task")
    client.limits()
    sim(sf, "POST", "sessions/expire")
    client.query_all("SELECT Id FROM Account")  # refused once, renewed, retried
    for fault, raised in (
        ("REQUEST_LIMIT_EXCEEDED", sf_errors.LimitExceeded),
        ("SERVER_UNAVAILABLE", sf_errors.Transient),
    ):
        sim(sf, "POST", "faults", json={"kind": fault})
        with pytest.raises(raised):
            client.query_all("SELECT Id FROM Account")

    after = counted(*labels)
    assert {label: after[label] - before[label] for label in labels} == {
        ("token", "ok"): 2,  # the first session and its renewal
        ("query", "ok"): 2,
        ("collections", "ok"): 1,
        ("describe", "ok"): 1,
        ("limits", "ok"): 1,
        ("query", "session_expired"): 1,
        ("query", "limit_exceeded"): 1,
        ("query", "transient"): 1,
    }


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Lead", "query"),
        ("GET", "/services/data/v59.0/query/01gxx-2000", "query"),
        ("GET", "/services/data/v59.0/queryAll?q=x", "query"),
        ("POST", "/services/data/v59.0/sobjects/Task/", "create"),
        ("PATCH", "/services/data/v59.0/sobjects/Task/00T000000000001AAA", "update"),
        ("PATCH", "/services/data/v59.0/sobjects/Task/M365Sync_Todo_Id__c/t-1", "upsert"),
        ("DELETE", "/services/data/v59.0/sobjects/Task/00T000000000001AAA", "delete"),
        ("GET", "/services/data/v59.0/sobjects/Task/00T000000000001AAA", "read"),
        ("GET", "/services/data/v59.0/sobjects/Task/describe/", "describe"),
        ("GET", "/services/data/v59.0/sobjects/", "describe"),
        ("GET", "/services/data/v59.0/sobjects/Event/updated/?start=x&end=y", "updated"),
        ("GET", "/services/data/v59.0/sobjects/Event/deleted/?start=x&end=y", "deleted"),
        ("POST", "/services/data/v59.0/composite/sobjects", "collections"),
        ("POST", "/services/data/v59.0/composite", "composite"),
        ("GET", "/services/data/v59.0/limits/", "limits"),
        ("POST", "/services/oauth2/token", "token"),
        ("GET", "/id/00D000000000001AAA/005000000000001AAA", "other"),
    ],
)
def test_operations_are_a_short_list_without_ids(method: str, path: str, operation: str) -> None:
    assert operation_of(method, f"https://acme.my.salesforce.com{path}") == operation
