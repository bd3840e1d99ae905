"""Outlook's per-app, per-mailbox limits: concurrency and the request window."""

from __future__ import annotations

import asyncio

import httpx

from m365sim.server import SimServer
from m365sim.throttling import CONCURRENCY_MESSAGE, RATE_MESSAGE
from support.demo import SERVICE_APP_ID, USER_APP_ID
from support.sim_tokens import bearer, mint_app_token, sim_async_client

TENANT = "contoso.com"
ROLES = ["Mail.Read", "Mail.ReadWrite"]


def headers(sim: SimServer, app_id: str = SERVICE_APP_ID) -> dict[str, str]:
    return bearer(mint_app_token(sim, TENANT, app_id, ROLES))


async def fire(sim: SimServer, count: int, auth: dict[str, str]) -> list[httpx.Response]:
    async with sim_async_client(sim) as client:
        return list(
            await asyncio.gather(
                *(
                    client.get("/v1.0/users/adele@contoso.com/messages", headers=auth)
                    for _ in range(count)
                )
            )
        )


def test_more_than_four_concurrent_requests_to_one_mailbox_get_429(
    sim: SimServer, http: httpx.Client
) -> None:
    http.post(
        "/_sim/faults",
        json={"kind": "delay", "delayMs": 600, "pathRegex": "/messages$", "count": 7},
    )
    auth = headers(sim)
    responses = asyncio.run(fire(sim, 7, auth))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 200, 429, 429, 429]
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert throttled.json()["error"]["message"] == CONCURRENCY_MESSAGE
    assert int(throttled.headers["Retry-After"]) >= 1
    # Slots are given back once the slow responses are done.
    again = http.get("/v1.0/users/adele@contoso.com/messages", headers=auth)
    assert again.status_code == 200


def test_concurrency_limit_is_configurable(sim: SimServer, http: httpx.Client) -> None:
    http.patch("/_sim/config", json={"concurrent_requests": 2})
    http.post(
        "/_sim/faults",
        json={"kind": "delay", "delayMs": 400, "pathRegex": "/messages$", "count": 4},
    )
    statuses = sorted(r.status_code for r in asyncio.run(fire(sim, 4, headers(sim))))
    assert statuses == [200, 200, 429, 429]


def test_request_window_limit_with_retry_after(sim: SimServer, http: httpx.Client) -> None:
    http.patch("/_sim/config", json={"requests_per_window": 3, "window_seconds": 60})
    auth = headers(sim)
    url = "/v1.0/users/adele@contoso.com/messages"
    assert [http.get(url, headers=auth).status_code for _ in range(3)] == [200, 200, 200]
    refused = http.get(url, headers=auth)
    assert refused.status_code == 429
    assert refused.json()["error"] == refused.json()["error"] | {
        "code": "ApplicationThrottled",
        "message": RATE_MESSAGE,
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The budget is per app and per mailbox.
    assert http.get("/v1.0/users/alex@contoso.com/messages", headers=auth).status_code == 200
    assert http.get(url, headers=headers(sim, USER_APP_ID)).status_code == 200
    # The window slides on the simulator's clock.
    http.post("/_sim/clock", json={"advanceSeconds": 61})
    assert http.get(url, headers=auth).status_code == 200


def test_throttling_can_be_switched_off(sim: SimServer, http: httpx.Client) -> None:
    http.patch("/_sim/config", json={"requests_per_window": 1, "throttling_enabled": False})
    auth = headers(sim)
    assert {
        http.get("/v1.0/users/adele@contoso.com/messages", headers=auth).status_code
        for _ in range(3)
    } == {200}


def test_throttled_requests_are_in_the_request_log(sim: SimServer, http: httpx.Client) -> None:
    http.patch("/_sim/config", json={"requests_per_window": 1})
    auth = headers(sim)
    http.delete("/_sim/requests")
    for _ in range(3):
        http.get("/v1.0/users/adele@contoso.com/messages", headers=auth)
    log = http.get("/_sim/requests", params={"path_contains": "/messages"}).json()["value"]
    assert [entry["status"] for entry in log] == [200, 429, 429]
