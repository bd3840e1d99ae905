"""JSON batching: limits, dependsOn, per-request statuses, dispatch through the app."""

from __future__ import annotations

import httpx
import pytest
from sim_tokens import GraphFactory

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer


@pytest.fixture
def client(graph: GraphFactory) -> httpx.Client:
    return graph(roles=("Mail.ReadWrite", "User.Read.All"))


def test_batch_runs_each_request_with_its_own_status(client: httpx.Client) -> None:
    response = client.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users/adele@contoso.com/mailFolders/inbox"},
                {"id": "2", "method": "GET", "url": "users/nobody@contoso.com/messages"},
                {
                    "id": "3",
                    "method": "POST",
                    "url": "/users/adele@contoso.com/mailFolders",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"displayName": "From batch"},
                },
                {
                    "id": "4",
                    "method": "GET",
                    "url": "/v1.0/users/adele@contoso.com/mailFolders?$top=1",
                },
            ]
        },
    )
    assert response.status_code == 200
    results = {r["id"]: r for r in response.json()["responses"]}
    assert results["1"]["status"] == 200 and results["1"]["body"]["displayName"] == "Inbox"
    assert (
        results["2"]["status"] == 404
        and results["2"]["body"]["error"]["code"] == "ErrorInvalidUser"
    )
    assert (
        results["3"]["status"] == 201
        and results["3"]["headers"]["Content-Type"] == "application/json"
    )
    assert len(results["4"]["body"]["value"]) == 1
    assert "@odata.nextLink" in results["4"]["body"]


def test_batch_limits(client: httpx.Client) -> None:
    twenty_one = [
        {"id": str(i), "method": "GET", "url": "/users/adele@contoso.com"} for i in range(21)
    ]
    too_many = client.post("/$batch", json={"requests": twenty_one})
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadRequest"
    assert client.post("/$batch", json={"requests": twenty_one[:20]}).status_code == 200
    duplicate = [
        {"id": "1", "method": "GET", "url": "/me"},
        {"id": "1", "method": "GET", "url": "/me"},
    ]
    assert client.post("/$batch", json={"requests": duplicate}).status_code == 400
    nested = [{"id": "1", "method": "POST", "url": "/$batch", "body": {}}]
    assert client.post("/$batch", json={"requests": nested}).status_code == 400


def test_depends_on_orders_requests_and_fails_dependants(client: httpx.Client) -> None:
    response = client.post(
        "/$batch",
        json={
            "requests": [
                {
                    "id": "create",
                    "method": "POST",
                    "url": "/users/adele@contoso.com/mailFolders",
                    "body": {"displayName": "Deals"},
                    "headers": {"Content-Type": "application/json"},
                },
                {
                    "id": "again",
                    "method": "POST",
                    "url": "/users/adele@contoso.com/mailFolders",
                    "body": {"displayName": "Deals"},
                    "headers": {"Content-Type": "application/json"},
                    "dependsOn": ["create"],
                },
                {
                    "id": "after",
                    "method": "GET",
                    "url": "/users/adele@contoso.com/mailFolders",
                    "dependsOn": ["again"],
                },
            ]
        },
    )
    results = {r["id"]: r for r in response.json()["responses"]}
    assert results["create"]["status"] == 201
    assert results["again"]["status"] == 409  # ran after "create", so the name is taken
    assert results["after"]["status"] == 424
    unknown = client.post(
        "/$batch",
        json={"requests": [{"id": "a", "method": "GET", "url": "/me", "dependsOn": ["zzz"]}]},
    )
    assert unknown.status_code == 400


def test_sub_requests_are_logged_as_requests(sim: SimServer, client: httpx.Client) -> None:
    sim.state.request_log.clear()
    client.post(
        "/$batch",
        json={
            "requests": [
                {"id": str(i), "method": "GET", "url": "/users/adele@contoso.com/mailFolders/inbox"}
                for i in range(5)
            ]
        },
    )
    paths = [r.path for r in sim.state.request_log]
    assert paths.count("/v1.0/users/adele@contoso.com/mailFolders/inbox") == 5
    assert paths.count("/v1.0/$batch") == 1


def test_responses_come_back_in_an_order_clients_must_not_rely_on(client: httpx.Client) -> None:
    ids = [str(n) for n in range(10)]
    requests = [{"id": i, "method": "GET", "url": "/users/adele@contoso.com"} for i in ids]
    orders = [
        [r["id"] for r in client.post("/$batch", json={"requests": requests}).json()["responses"]]
        for _ in range(3)
    ]
    assert all(sorted(order, key=int) == ids for order in orders)
    assert any(order != ids for order in orders)


def test_same_seed_same_order(sim: SimServer, client: httpx.Client) -> None:
    requests = [
        {"id": str(n), "method": "GET", "url": "/users/adele@contoso.com"} for n in range(8)
    ]

    def order() -> list[str]:
        answer = client.post("/$batch", json={"requests": requests}).json()
        return [r["id"] for r in answer["responses"]]

    first = order()
    sim.state.reset()
    load_seed(sim.state, read_seed(DEMO_SEED))
    assert order() == first
    client.patch(f"{sim.url}/_sim/config", json={"batch_shuffle": False})
    assert order() == [str(n) for n in range(8)]


def test_a_body_without_content_type_or_a_write_without_body_refuses_the_batch(
    sim: SimServer, client: httpx.Client
) -> None:
    sim.state.request_log.clear()
    no_type = client.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users/adele@contoso.com"},
                {
                    "id": "2",
                    "method": "POST",
                    "url": "/users/adele@contoso.com/mailFolders",
                    "body": {"displayName": "No type"},
                },
            ]
        },
    )
    assert no_type.status_code == 400
    assert no_type.json()["error"] == no_type.json()["error"] | {
        "code": "BadRequest",
        "message": "Write request id : 2 does not contain Content-Type header or body.",
    }
    no_body = client.post(
        "/$batch",
        json={
            "requests": [
                {
                    "id": "send",
                    "method": "POST",
                    "url": "/users/adele@contoso.com/messages/x/send",
                    "headers": {"Content-Type": "application/json"},
                }
            ]
        },
    )
    assert no_body.status_code == 400
    assert "Write request id : send" in no_body.json()["error"]["message"]
    # Nothing of a refused batch runs.
    assert [r.path for r in sim.state.request_log] == ["/v1.0/$batch", "/v1.0/$batch"]


def test_sub_response_headers_use_graphs_casing(sim: SimServer, client: httpx.Client) -> None:
    client.post(
        f"{sim.url}/_sim/faults",
        json={"kind": "429", "pathRegex": "/users/alex", "retryAfter": 3},
    )
    answer = client.post(
        "/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": "/users/alex@contoso.com"}]},
    ).json()["responses"][0]
    assert answer["status"] == 429
    assert answer["headers"]["Retry-After"] == "3"
    assert "retry-after" not in answer["headers"]
    assert answer["headers"]["Content-Type"] == "application/json"
