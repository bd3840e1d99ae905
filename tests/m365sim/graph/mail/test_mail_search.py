"""``$search`` on messages with Graph's documented limits."""

from __future__ import annotations

import httpx

ADELE = "/users/adele@contoso.com"


def deliver(control: httpx.Client, **spec: object) -> dict:
    response = control.post("/_sim/mailboxes/adele@contoso.com/messages", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def test_search_default_properties_kql_and_order(graph, control) -> None:
    deliver(
        control,
        **{"from": {"address": "kim@fabrikam.com", "name": "Kim Akers"}},
        subject="Pizza party",
        receivedDateTime="-3d",
    )
    deliver(control, subject="Lunch", body="We ordered pizzas", receivedDateTime="-1d")
    deliver(
        control,
        subject="Quote",
        attachments=[{"name": "quote-2026.pdf", "size": 3}],
        receivedDateTime="-2d",
    )
    deliver(control, subject="Nothing here")
    client = graph()

    # No ConsistencyLevel header needed; newest sent first.
    found = client.get(f"{ADELE}/messages", params={"$search": '"pizza"'}).json()["value"]
    assert [m["subject"] for m in found] == ["Lunch", "Pizza party"]
    by_sender = client.get(f"{ADELE}/messages", params={"$search": '"from:kim@fabrikam.com"'})
    assert [m["subject"] for m in by_sender.json()["value"]] == ["Pizza party"]
    by_file = client.get(f"{ADELE}/messages", params={"$search": '"attachment:quote"'})
    assert [m["subject"] for m in by_file.json()["value"]] == ["Quote"]
    both = client.get(f"{ADELE}/messages", params={"$search": '"subject:pizza AND from:kim"'})
    assert [m["subject"] for m in both.json()["value"]] == ["Pizza party"]


def test_search_refuses_filter_orderby_and_skip_and_pages_by_skiptoken(graph, control) -> None:
    for n in range(12):
        deliver(control, subject=f"Report {n}")
    client = graph()
    for extra in ({"$filter": "isRead eq false"}, {"$orderby": "subject"}, {"$skip": "2"}):
        refused = client.get(f"{ADELE}/messages", params={"$search": '"report"', **extra})
        assert refused.status_code == 400, extra
        assert "not supported with '$search'" in refused.json()["error"]["message"]
    page = client.get(f"{ADELE}/messages", params={"$search": '"report"', "$top": "5"}).json()
    seen = [m["id"] for m in page["value"]]
    while "@odata.nextLink" in page:
        assert "$skiptoken=" in page["@odata.nextLink"]
        page = client.get(page["@odata.nextLink"]).json()
        seen += [m["id"] for m in page["value"]]
    assert len(seen) == len(set(seen)) == 12
    unmodelled = client.get(f"{ADELE}/messages", params={"$search": '"received:2026-01-01"'})
    assert unmodelled.status_code == 501
