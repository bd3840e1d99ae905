"""The latency model: every answer takes time, sized by the answer, with jitter.

Microsoft Graph is a remote service: a request spends tens to hundreds of milliseconds
between the client and Exchange, longer for a large page. Without that, a request holds
its throttling slot only while m365sim computes the answer (well under a millisecond), so
Outlook's concurrency limit (4 requests in flight per app per mailbox) could never bite
and a client that floods one mailbox would pass every test.

The model: ``LatencyMiddleware`` lets the application produce the whole response, then
holds it back ``delay`` before the first byte, where

    delay = (base_ms + per_kib_ms * response KiB) * exp(N(0, jitter))   (capped at max_ms)

drawn from a ``random.Random(seed)`` kept per simulator (and recreated by ``reset``), so a
run is reproducible for a given seed and request order. It sits inside the throttling
middleware, so the request keeps its concurrency slot for the whole delay, as a real
request occupies its mailbox until Exchange has answered. ``$batch`` sub-requests are
dispatched through the whole application and each gets its own delay.

Knobs (``SimConfig``, changed with ``PATCH /_sim/config``, ``m365sim serve --latency...``):
``latency_base_ms``, ``latency_per_kib_ms``, ``latency_jitter`` (the log-normal sigma),
``latency_max_ms`` and ``latency_seed``. ``LATENCY_PROFILES`` names the two settings tests
use: ``"realistic"`` (the defaults, used by ``m365sim serve`` and the demo) and ``"none"``
(every delay zero, for unit tests that don't exercise time).

Differences from Microsoft: Microsoft publishes no latency figures; the realistic profile
is m365sim's choice (about 120 ms per request plus 0.5 ms per KiB), not a measurement. Real
latency also varies with load, region and the hour; requests to ``/_sim`` are never
delayed.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365sim.state import SimConfig, SimState

__all__ = [
    "LATENCY_PROFILES",
    "LatencyMiddleware",
    "apply_latency_profile",
    "latency_for",
]

LATENCY_PROFILES: dict[str, dict[str, Any]] = {
    "realistic": {
        "latency_base_ms": 120,
        "latency_per_kib_ms": 0.5,
        "latency_jitter": 0.35,
        "latency_max_ms": 10_000,
    },
    "none": {
        "latency_base_ms": 0,
        "latency_per_kib_ms": 0.0,
        "latency_jitter": 0.0,
        "latency_max_ms": 0,
    },
}
"""Named latency settings; ``apply_latency_profile`` copies one into a ``SimConfig``."""


def apply_latency_profile(config: SimConfig, profile: str) -> None:
    """Set ``config``'s latency knobs to a named profile (``"realistic"`` or ``"none"``)."""
    try:
        values = LATENCY_PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(LATENCY_PROFILES))
        raise ValueError(f"Unknown latency profile {profile!r}; known: {known}") from None
    for name, value in values.items():
        setattr(config, name, value)


@dataclass
class _Draws:
    """The random source of one simulator, recreated when the seed changes or on reset."""

    seed: int
    rng: random.Random


def _rng(state: SimState) -> random.Random:
    seed = state.config.latency_seed
    draws = state.extension("latency", lambda: _Draws(seed, random.Random(seed)))  # noqa: S311
    if draws.seed != seed:
        draws.seed, draws.rng = seed, random.Random(seed)  # noqa: S311 - reproducible, not secret
    return draws.rng


def latency_for(state: SimState, size_bytes: int) -> float:
    """Seconds to hold back an answer of ``size_bytes`` (one draw of the jitter)."""
    config = state.config
    nominal = config.latency_base_ms + config.latency_per_kib_ms * (size_bytes / 1024)
    if nominal <= 0 or config.latency_max_ms <= 0:
        return 0.0
    factor = math.exp(_rng(state).gauss(0.0, config.latency_jitter)) if config.latency_jitter else 1
    return min(nominal * factor, config.latency_max_ms) / 1000


class LatencyMiddleware:
    """Holds each non-``/_sim`` response back by ``latency_for`` its size before sending it."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        config = self.state.config
        if config.latency_base_ms <= 0 and config.latency_per_kib_ms <= 0:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        size = 0

        async def hold(message: Message) -> None:
            nonlocal size
            if message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            held.append(message)

        await self.app(scope, receive, hold)
        delay = latency_for(self.state, size)
        if delay > 0:
            await asyncio.sleep(delay)
        for message in held:
            await send(message)
