"""Outlook's per-mailbox limits kept in Redis by several processes together
(``m365sync.microsoft.limits.SharedSlots``), on a real Redis. Each ``SharedSlots`` below
has its own Redis connections, as each worker process has."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

import pytest
import redis

from m365sync.microsoft.limits import SharedSlots

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _redis_up() and not os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"), reason="no Redis"
)


class Refused(Exception):
    """Raised by the sleep hook: the slot was refused, and the test wanted to know why."""


async def refuse(seconds: float) -> None:
    """A sleep hook that never waits: a hold that would wait for a slot raises ``Refused``."""
    raise Refused


def slots(prefix: str, scope: str = "connection-1", **limits: Any) -> SharedSlots:
    values: dict[str, Any] = {
        "per_mailbox": 4,
        "per_connection": 32,
        "requests_per_window": 10_000,
        "window_seconds": 600,
        "lease_seconds": 60,
        **limits,
    }
    return SharedSlots(REDIS_URL, scope, prefix=prefix, **values)


@pytest.fixture
def prefix() -> Any:
    name = f"m365sync-test:{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


class InFlight:
    """Counts requests to one mailbox in flight, and the most at once."""

    def __init__(self) -> None:
        self.now = self.most = 0

    async def request(self, shared: SharedSlots, seconds: float = 0.0) -> None:
        async with shared.hold("adele@contoso.com"):
            self.now += 1
            self.most = max(self.most, self.now)
            await asyncio.sleep(seconds)
            self.now -= 1


def test_two_processes_together_never_exceed_the_mailbox_limit(prefix: str) -> None:
    counter = InFlight()

    async def run() -> None:
        first, second = slots(prefix, per_mailbox=2), slots(prefix, per_mailbox=2)
        try:
            await asyncio.gather(*(counter.request(s, 0.02) for s in [first, second] * 8))
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(run())

    assert counter.most == 2


def test_the_slot_of_a_process_that_died_is_free_once_its_lease_passes(prefix: str) -> None:
    async def run() -> str:
        dead = slots(prefix, per_mailbox=1, lease_seconds=0.3)
        held = dead.hold("adele@contoso.com")
        await held.__aenter__()  # then the process is killed: nothing gives the slot back
        await dead.aclose()
        survivor = slots(prefix, per_mailbox=1, lease_seconds=0.3)
        try:
            async with asyncio.timeout(20):
                async with survivor.hold("adele@contoso.com"):
                    return "sent"
        finally:
            await survivor.aclose()

    assert asyncio.run(run()) == "sent"


def test_a_request_cancelled_as_redis_gives_it_the_slot_gives_the_slot_back(
    prefix: str,
) -> None:
    """A folder's request waiting for the mailbox's slot is cancelled (another folder's
    round failed) just after Redis gave it the slot and before the answer arrived: the
    slot is free again at once for another process, not after its lease."""

    async def run() -> str:
        cancelled = slots(prefix, per_mailbox=1)
        cancelled._client()
        take = cancelled._acquire

        async def taken_then_cancelled(*, keys: list[str], args: list[Any]) -> Any:
            await take(keys=keys, args=args)  # Redis gives the slot...
            raise asyncio.CancelledError  # ...and the task is cancelled before it hears

        cancelled._acquire = taken_then_cancelled
        other = slots(prefix, per_mailbox=1, sleep=refuse)  # refused at once if taken
        try:
            with pytest.raises(asyncio.CancelledError):
                async with cancelled.hold("adele@contoso.com"):
                    pytest.fail("the request was cancelled before it had its slot")
            async with other.hold("adele@contoso.com"):
                return "sent at once"
        finally:
            await cancelled.aclose()
            await other.aclose()

    assert asyncio.run(run()) == "sent at once"


def test_a_request_past_the_mailbox_window_waits_for_it(prefix: str) -> None:
    waits: list[float] = []

    async def refuse(seconds: float) -> None:
        waits.append(seconds)
        raise Refused

    async def run() -> int:
        first = slots(prefix, requests_per_window=3)
        second = slots(prefix, requests_per_window=3)
        second._sleep = refuse
        sent = 0
        try:
            for shared in (first, first, second):
                async with shared.hold("adele@contoso.com"):
                    sent += 1
            with pytest.raises(Refused):
                async with second.hold("ADELE@contoso.com"):
                    sent += 1
            async with second.hold("kim@contoso.com"):  # another mailbox has its own window
                sent += 1
        finally:
            await first.aclose()
            await second.aclose()
        return sent

    assert asyncio.run(run()) == 4
    assert len(waits) == 1 and waits[0] > 0.1  # the window, not a slot in flight


def test_connections_have_limits_of_their_own_and_each_caps_its_requests(prefix: str) -> None:
    async def run() -> None:
        first = slots(prefix, "connection-1", per_mailbox=1, per_connection=2)
        other_app = slots(prefix, "connection-2", per_mailbox=1, per_connection=2)
        other_app._sleep = refuse
        first._sleep = refuse
        try:
            async with (
                first.hold("adele@contoso.com"),
                other_app.hold("adele@contoso.com"),
                first.hold("kim@contoso.com"),
            ):
                with pytest.raises(Refused):  # the connection's third request in flight
                    async with first.hold("ben@contoso.com"):
                        pass
        finally:
            await first.aclose()
            await other_app.aclose()

    asyncio.run(run())


def test_without_redis_the_process_keeps_the_limit_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = SharedSlots(
        "redis://127.0.0.1:1/0",
        "connection-1",
        per_mailbox=1,
        per_connection=32,
        requests_per_window=10_000,
        window_seconds=600,
        lease_seconds=60,
    )
    counter = InFlight()

    async def run() -> None:
        try:
            await asyncio.gather(*(counter.request(shared) for _ in range(3)))
        finally:
            await shared.aclose()

    with caplog.at_level(logging.WARNING, logger="m365sync.microsoft.limits"):
        asyncio.run(run())

    assert counter.most == 1
    assert [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(caplog.records) == 1
