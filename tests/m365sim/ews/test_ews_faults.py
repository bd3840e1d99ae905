"""Throttling and injected faults on EWS, in Exchange's shapes, through the same control API
as Graph's."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from exchangelib import FailFast, FaultTolerance
from exchangelib.errors import ErrorInvalidSyncStateData, ErrorServerBusy

from support.ews_clients import AccountFactory


def ews_requests(control: httpx.Client) -> list[dict[str, object]]:
    value: list[dict[str, object]] = control.get(
        "/_sim/requests", params={"path_contains": "/EWS/"}
    ).json()["value"]
    return value


def test_exchangelib_backs_off_as_error_server_busy_asks(
    ews: AccountFactory, control: httpx.Client
) -> None:
    account = ews("diego@contoso.com", retry_policy=FaultTolerance(max_wait=30))
    inbox = account.inbox
    control.post(
        "/_sim/faults",
        json={"kind": "429", "operation": "SyncFolderItems", "backOffMs": 400, "count": 1},
    )
    control.delete("/_sim/requests")
    changes = list(inbox.sync_items(max_changes_returned=50, only_fields=["subject"]))
    assert len(changes) == 42
    busy, retried = [r for r in ews_requests(control) if r["status"] in (500, 200)][:2]
    assert busy["status"] == 500 and retried["status"] == 200
    waited = datetime.fromisoformat(str(retried["startedAt"])) - datetime.fromisoformat(
        str(busy["startedAt"])
    )
    assert waited.total_seconds() >= 0.4
    injected = control.get("/_sim/faults").json()["injections"]
    assert [i["kind"] for i in injected] == ["429"]


def test_a_fail_fast_client_sees_the_back_off(ews: AccountFactory, control: httpx.Client) -> None:
    inbox = ews("diego@contoso.com", retry_policy=FailFast()).inbox
    control.post("/_sim/faults", json={"kind": "429", "operation": "FindItem", "retryAfter": 3})
    with pytest.raises(ErrorServerBusy) as raised:
        list(inbox.all().only("subject"))
    assert raised.value.back_off == 3.0


def test_an_expired_cursor_fault_is_invalid_sync_state_data(
    ews: AccountFactory, control: httpx.Client
) -> None:
    inbox = ews("diego@contoso.com").inbox
    list(inbox.sync_items(only_fields=["subject"]))
    control.post("/_sim/faults", json={"kind": "expiredCursor", "operation": "SyncFolderItems"})
    with pytest.raises(ErrorInvalidSyncStateData):
        list(inbox.sync_items(sync_state=inbox.item_sync_state))
    assert list(inbox.sync_items(sync_state=inbox.item_sync_state)) == []


def test_the_request_budget_throttles_with_error_server_busy(
    ews: AccountFactory, control: httpx.Client
) -> None:
    inbox = ews("diego@contoso.com", retry_policy=FailFast()).inbox
    control.patch("/_sim/config", json={"requests_per_window": 2, "window_seconds": 60})
    with pytest.raises(ErrorServerBusy) as raised:
        for _ in range(3):
            list(inbox.all().only("subject")[:5])
    assert raised.value.back_off and raised.value.back_off > 0


def test_a_trickled_answer_arrives_whole(ews: AccountFactory, control: httpx.Client) -> None:
    """``trickle`` on EWS: the same answer, its body a byte at a time."""
    inbox = ews("diego@contoso.com").inbox
    expected = [item.subject for item in inbox.all().only("subject").order_by("subject")[:2]]
    control.post("/_sim/faults", json={"kind": "trickle", "operation": "FindItem", "delayMs": 1})

    trickled = [item.subject for item in inbox.all().only("subject").order_by("subject")[:2]]

    assert trickled == expected and len(expected) == 2
    injected = control.get("/_sim/faults").json()["injections"]
    assert [i["kind"] for i in injected] == ["trickle"]
