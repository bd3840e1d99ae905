"""The Graph client's promises, against an injected httpx transport."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from m365sync.microsoft import errors as ms
from m365sync.microsoft.graph import GraphClient
from m365sync.settings import Settings


class Tokens:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    async def __call__(self, *, force_refresh: bool = False, refused: str | None = None) -> str:
        self.calls.append(force_refresh)
        return f"token-{len(self.calls)}"


def client(handler, tokens=None, **settings) -> tuple[GraphClient, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    config = Settings(
        _env_file=None,
        graph_url="https://graph.test/v1.0",
        graph_backoff_base_seconds=0.5,
        **settings,
    )
    return GraphClient(
        config, tokens or Tokens(), transport=httpx.MockTransport(handler), sleep=sleep
    ), slept


async def test_immutable_ids_and_bearer_on_every_request():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": []})

    graph, _ = client(handler)
    await graph.get_json("/users/a@contoso.com/messages", prefer=["odata.maxpagesize=50"])
    assert seen[0].headers["prefer"] == 'IdType="ImmutableId", odata.maxpagesize=50'
    assert seen[0].headers["authorization"] == "Bearer token-1"
    assert str(seen[0].url).startswith("https://graph.test/v1.0/users/a@contoso.com/messages")


async def test_retry_after_is_honoured_then_backoff_then_classified_error():
    answers = iter(
        [
            httpx.Response(
                429, headers={"Retry-After": "3"}, json={"error": {"code": "ApplicationThrottled"}}
            ),
            httpx.Response(503, json={"error": {"code": "ServiceUnavailable"}}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    graph, slept = client(lambda request: next(answers))
    assert await graph.get_json("/me") == {"ok": True}
    assert slept[0] == 3 and 0.25 <= slept[1] <= 1.0

    graph, slept = client(
        lambda request: httpx.Response(500, json={"error": {"code": "InternalServerError"}}),
        graph_max_retries=3,
    )
    with pytest.raises(ms.Transient):
        await graph.get_json("/me")
    assert len(slept) == 3 and slept[2] > slept[0]


async def test_long_retry_after_is_not_slept_through():
    graph, slept = client(
        lambda request: httpx.Response(
            429, headers={"Retry-After": "600"}, json={"error": {"code": "ApplicationThrottled"}}
        )
    )
    with pytest.raises(ms.Throttled) as caught:
        await graph.get_json("/me")
    assert caught.value.retry_after == 600 and slept == []


async def test_401_retries_once_with_a_fresh_token():
    tokens = Tokens()
    graph, _ = client(
        lambda request: httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}}),
        tokens,
    )
    with pytest.raises(ms.AuthRevoked):
        await graph.get_json("/me")
    assert tokens.calls == [False, True]


async def test_network_errors_are_transient():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    graph, slept = client(handler, graph_max_retries=1)
    with pytest.raises(ms.Transient):
        await graph.get_json("/me")
    assert len(slept) == 1


async def test_paging_follows_next_link_and_returns_delta_link():
    pages = {
        "/v1.0/users/a/mailFolders/inbox/messages/delta": {
            "value": [{"id": 1}],
            "@odata.nextLink": "https://graph.test/v1.0/next?skip=1",
        },
        "/v1.0/next": {
            "value": [{"id": 2}],
            "@odata.deltaLink": "https://graph.test/v1.0/delta?token=abc",
        },
    }
    graph, _ = client(lambda request: httpx.Response(200, json=pages[request.url.path]))
    items, delta = await graph.get_paged("/users/a/mailFolders/inbox/messages/delta", page_size=1)
    assert [i["id"] for i in items] == [1, 2]
    assert delta == "https://graph.test/v1.0/delta?token=abc"


async def test_at_most_four_requests_in_flight_per_mailbox():
    in_flight = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        box = request.url.path.split("/")[3]
        in_flight[box] += 1
        peak[box] = max(peak[box], in_flight[box])
        await asyncio.sleep(0.01)
        in_flight[box] -= 1
        return httpx.Response(200, json={})

    graph, _ = client(handler)
    await asyncio.gather(*(graph.get_json(f"/users/{box}/messages") for box in "ab" * 12))
    assert peak == {"a": 4, "b": 4}
