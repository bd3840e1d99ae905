"""Anonymous visitors are rate limited: past the limit, sign-in answers 429 with
``Retry-After`` and a page saying when to try again. ``X-Forwarded-For`` counts only from a
trusted proxy, so a visitor can't dodge the limit by making addresses up."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from m365sync.settings import Settings
from m365sync.web.security import AnonymousCapacity, RateLimiter, RateLimits, ServerBusy

SIGN_INS_PER_MINUTE = 10


def post_from(app: FastAPI, address: str, path: str, **request: Any) -> httpx.Response:
    """POST as a visitor whose connection comes from ``address``."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://m365sync") as client:
            return await client.post(path, **request)

    return asyncio.run(send())


def sign_in_attempt(app: FastAPI, address: str, **headers: str) -> httpx.Response:
    return post_from(
        app,
        address,
        "/sign-in",
        data={"email": "who@contoso.com", "password": "x"},
        headers=headers,
    )


def test_sign_in_attempts_past_the_limit_are_asked_to_wait(app: FastAPI) -> None:
    for _ in range(SIGN_INS_PER_MINUTE):
        assert sign_in_attempt(app, "203.0.113.7").status_code == 401

    refused = sign_in_attempt(app, "203.0.113.7")
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert "Too many sign-in attempts came from your network" in refused.text
    assert f"Try again in {wait} seconds" in refused.text
    # "Sign in with Microsoft" counts against the same attempts.
    microsoft = post_from(app, "203.0.113.7", "/sign-in/microsoft", data={"email": "a@b.c"})
    assert microsoft.status_code == 429
    # Someone else is not affected.
    assert sign_in_attempt(app, "198.51.100.20").status_code == 401


def test_made_up_forwarded_addresses_do_not_dodge_the_limit(app: FastAPI) -> None:
    answers = [
        sign_in_attempt(app, "203.0.113.7", **{"x-forwarded-for": f"192.0.2.{n}"}).status_code
        for n in range(SIGN_INS_PER_MINUTE + 1)
    ]
    assert answers[-1] == 429  # no proxy is trusted: the connection's address counts


def test_a_trusted_proxy_names_the_visitor(app: FastAPI, web_settings: Settings) -> None:
    app.state.rate_limits = RateLimits.from_settings(
        web_settings.model_copy(update={"trusted_proxies": ("10.0.0.0/8",)})
    )
    proxy = "10.1.2.3"
    # Every visitor behind the proxy has a budget of their own...
    for n in range(SIGN_INS_PER_MINUTE + 1):
        answer = sign_in_attempt(app, proxy, **{"x-forwarded-for": f"192.0.2.{n}"})
        assert answer.status_code == 401
    # ...and what the visitor wrote further left is not believed: the proxy's entry counts.
    for n in range(SIGN_INS_PER_MINUTE):
        forged = f"198.51.100.{n}, 203.0.113.99"
        assert sign_in_attempt(app, proxy, **{"x-forwarded-for": forged}).status_code == 401
    assert (
        sign_in_attempt(app, proxy, **{"x-forwarded-for": "1.2.3.4, 203.0.113.99"}).status_code
        == 429
    )


def test_a_bucket_refills_at_its_rate_and_remembers_a_bounded_number_of_visitors() -> None:
    now = [0.0]
    limiter = RateLimiter(6, max_keys=2, clock=lambda: now[0])  # one request every 10 s
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    assert limiter.take("a") == pytest.approx(10.0)
    now[0] += 10.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(10.0)
    limiter.take("b")
    limiter.take("c")  # "a" was used least recently: forgotten, so it starts afresh
    assert limiter.take("a") == 0.0


def test_an_ipv6_visitor_is_counted_by_their_64_bit_prefix(app: FastAPI) -> None:
    for n in range(SIGN_INS_PER_MINUTE):
        assert sign_in_attempt(app, f"2001:db8:1:2::{n + 1:x}").status_code == 401
    assert sign_in_attempt(app, "2001:db8:1:2:ffff::1").status_code == 429
    assert sign_in_attempt(app, "2001:db8:1:3::1").status_code == 401


def test_a_crowd_waits_its_turn_and_is_asked_to_come_back_after_waiting_too_long() -> None:
    async def scenario() -> ServerBusy:
        capacity = AnonymousCapacity(2, wait_seconds=0.05)
        async with capacity.place(), capacity.place():  # every place taken, for the whole wait
            with pytest.raises(ServerBusy) as refused:
                async with capacity.place():
                    pass
        async with capacity.place():  # free again
            pass
        return refused.value

    busy = asyncio.run(scenario())
    assert busy.status == 503 and busy.retry_after == 5
    assert busy.message == "This booking page is very busy right now."
    assert busy.fix is not None and busy.fix.startswith("Try again in 5 seconds")
