"""The latency model: answers take time, so Outlook's concurrency limit bites as in Graph."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from sim_tokens import SERVICE_APP_ID, bearer, mint_app_token, sim_async_client

from m365sim.cli import configure, parse_args
from m365sim.latency import latency_for
from m365sim.server import SimServer
from m365sim.state import SimConfig, SimState
from m365sim.throttling import CONCURRENCY_MESSAGE

MAILBOX_URL = "/v1.0/users/adele@contoso.com/messages"


async def _flood(sim: SimServer, count: int) -> list[httpx.Response]:
    auth = bearer(mint_app_token(sim, "contoso.com", SERVICE_APP_ID, ["Mail.Read"]))
    async with sim_async_client(sim) as client:
        # Open the connections first (the control API is never delayed), so the Graph
        # requests below really are in flight together.
        await asyncio.gather(*(client.get("/_sim/clock") for _ in range(count)))
        return list(
            await asyncio.gather(*(client.get(MAILBOX_URL, headers=auth) for _ in range(count)))
        )


def _most_in_flight(records: list[dict[str, object]]) -> int:
    """The largest number of admitted (200) requests whose lifetimes overlapped."""
    edges: list[tuple[datetime, int]] = []
    for record in records:
        if record["status"] != 200:
            continue
        start = datetime.fromisoformat(str(record["startedAt"]))
        end = start + timedelta(milliseconds=float(str(record["durationMs"])))
        edges += [(start, 1), (end, -1)]
    most = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        most = max(most, current)
    return most


@pytest.mark.realistic_latency
def test_realistic_latency_makes_the_mailbox_concurrency_limit_bite(
    sim: SimServer, http: httpx.Client
) -> None:
    http.delete("/_sim/requests")
    responses = asyncio.run(_flood(sim, 24))
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled, "24 requests at once to one mailbox must not all pass"
    assert {r.json()["error"]["message"] for r in throttled} == {CONCURRENCY_MESSAGE}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in throttled)
    log = http.get("/_sim/requests", params={"path_contains": "/messages"}).json()["value"]
    assert _most_in_flight(log) <= 4


def test_tests_run_without_latency_unless_they_ask(sim: SimServer) -> None:
    config = sim.state.config
    assert (config.latency_base_ms, config.latency_per_kib_ms) == (0, 0)


@pytest.mark.realistic_latency
def test_the_marker_turns_on_the_realistic_profile(sim: SimServer) -> None:
    assert sim.state.config.latency_base_ms == SimConfig().latency_base_ms > 0


def test_delays_grow_with_the_answer_and_repeat_for_a_seed() -> None:
    state = SimState()
    state.config.latency_jitter = 0
    small, large = latency_for(state, 1_000), latency_for(state, 1_000_000)
    assert 0 < small < large <= state.config.latency_max_ms / 1000
    state.config.latency_jitter = 0.35
    state.config.latency_seed = 7
    first = [latency_for(state, 5_000) for _ in range(5)]
    state.reset()
    assert [latency_for(state, 5_000) for _ in range(5)] == first
    assert len(set(first)) > 1  # jitter


def test_control_api_sets_a_profile_and_refuses_nonsense(http: httpx.Client) -> None:
    answer = http.patch("/_sim/config", json={"latency_profile": "realistic", "latency_seed": 3})
    assert answer.status_code == 200
    assert answer.json()["latency_base_ms"] > 0 and answer.json()["latency_seed"] == 3
    off = http.patch("/_sim/config", json={"latency_profile": "none"}).json()
    assert off["latency_base_ms"] == 0
    assert http.patch("/_sim/config", json={"latency_profile": "slow"}).status_code == 400
    assert http.patch("/_sim/config", json={"latency_jitter": -1}).status_code == 400


def test_serve_is_realistic_by_default_and_takes_options() -> None:
    config = SimConfig()
    configure(config, parse_args(["serve"]))
    assert config.latency_base_ms == 120
    assert config.allow_http_notification_urls is False  # strict: Graph requires https
    args = ["serve", "--latency", "none", "--latency-base-ms", "40", "--allow-http-webhooks"]
    configure(config, parse_args(args))
    assert (config.latency_base_ms, config.latency_per_kib_ms) == (40, 0)
    assert config.allow_http_notification_urls is True
