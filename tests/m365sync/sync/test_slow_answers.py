"""An answer from Graph that trickles in (a slow or congested network: no single read waits
long enough for httpx's timeout) is cut off at the request's deadline and retried like any
network failure. The sync never hangs on it, and the mailbox's request slot is free again
at once, in one process and when the slots are kept in Redis by several processes."""

from __future__ import annotations

import asyncio
import os

import pytest

from m365sync.connections.models import ServiceAccount
from m365sync.crm.models import ActivityKind
from m365sync.microsoft.graph import request_deadline_seconds
from m365sync.microsoft.limits import SharedSlots
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit, UnitStatus
from m365sync.sync.service import UnitResult, sync_member
from support.services import redis_up
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"
REDIS_URL = "redis://127.0.0.1:6379/0"
MESSAGES = 10
BYTE_EVERY_MS = 200
"""The trickle: a byte every 0.2 s, well inside the 1 s each read may wait, so only the
request's deadline (2 s) ends it. The page of ten messages runs to kilobytes: sent whole,
it would take well over ten minutes."""
NOT_HUNG_SECONDS = 60
"""Only bounds a test that would otherwise hang for the whole trickle; nothing asserts on
how long the sync took."""


class Refused(Exception):
    """Raised by another process's wait for a slot: none was free."""


@pytest.fixture(params=["one process", "processes sharing Redis"])
def slow_world(world: SyncWorld, request: pytest.FixtureRequest) -> SyncWorld:
    """The world with a 1 s network timeout (a 2 s request deadline) and one request slot
    per mailbox, so a retry needs the slot the cut-off request held."""
    world.settings.graph_timeout_seconds = 1
    world.settings.graph_concurrency_per_mailbox = 1
    if request.param == "processes sharing Redis":
        if not redis_up() and not os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"):
            pytest.skip("no Redis")
        world.settings.graph_limits_redis_url = REDIS_URL
        world.runtime.share_graph_limits = True
    world.add_contact("kim@fabrikam.com")
    for number in range(MESSAGES):
        world.deliver(
            ADELE,
            **{
                "from": "kim@fabrikam.com",
                "subject": f"Pricing {number}",
                "body": "The figures we discussed, line by line. " * 20,
            },
        )
    return world


def trickle(world: SyncWorld, count: int) -> None:
    world.control.post(
        "/_sim/faults",
        json={
            "kind": "trickle",
            "delayMs": BYTE_EVERY_MS,
            "pathRegex": "/messages/delta",
            "mailbox": ADELE,
            "count": count,
        },
    ).raise_for_status()


def sync_adele(world: SyncWorld) -> UnitResult:
    async def run() -> UnitResult:
        try:
            async with asyncio.timeout(NOT_HUNG_SECONDS):
                return await sync_member(
                    world.database,
                    world.runtime,
                    world.members[ADELE],
                    SyncFeature.EMAIL,
                    settings=world.engine,
                )
        finally:
            await world.runtime.aclose()

    return asyncio.run(run())


def injected(world: SyncWorld) -> int:
    return int(world.control.get("/_sim/faults").json()["injectedCount"])


def slot_free_for_another_process(world: SyncWorld) -> bool:
    """Whether another process (its own ``SharedSlots``, one slot per mailbox) gets
    Adele's slot at once, without waiting for anything to give it back."""
    with world.database.session() as session:
        connection_id = session.query(ServiceAccount).one().id

    async def refuse(seconds: float) -> None:
        raise Refused

    async def take() -> bool:
        other = SharedSlots(
            REDIS_URL,
            connection_id,
            per_mailbox=1,
            per_connection=32,
            requests_per_window=10_000,
            window_seconds=600,
            lease_seconds=60,
            sleep=refuse,
        )
        try:
            async with other.hold(ADELE):
                return True
        except Refused:
            return False
        finally:
            await other.aclose()

    return asyncio.run(take())


def test_a_trickling_answer_is_cut_off_and_the_sync_goes_on(slow_world: SyncWorld) -> None:
    world = slow_world
    trickle(world, count=1)

    result = sync_adele(world)

    assert result.outcome == "ok" and result.status == UnitStatus.ACTIVE
    assert injected(world) == 1  # the trickle was cut off, and the retry got its slot
    with world.crm() as crm:
        assert sorted(a.subject for a in crm.activities(ActivityKind.EMAIL)) == [
            f"Pricing {number}" for number in range(MESSAGES)
        ]
    if world.runtime.share_graph_limits:
        assert slot_free_for_another_process(world)


def test_answers_that_keep_trickling_leave_the_reason_on_the_unit(
    slow_world: SyncWorld,
) -> None:
    world = slow_world
    world.settings.graph_max_retries = 1
    trickle(world, count=2)
    deadline = request_deadline_seconds(world.settings)

    failed = sync_adele(world)

    assert failed.outcome == "failed" and failed.status == UnitStatus.BACKING_OFF
    assert f"took longer than {deadline:g} s" in failed.error
    assert "Graph timeout setting" in failed.fix
    with world.database.session() as session:
        unit = session.get(SyncUnit, failed.unit_id)
        assert unit is not None
        assert unit.last_error == failed.error and unit.lease_owner is None
    assert injected(world) == 2
    if world.runtime.share_graph_limits:
        assert slot_free_for_another_process(world)

    again = sync_adele(world)

    assert again.outcome == "ok"
    with world.crm() as crm:
        assert len(crm.activities(ActivityKind.EMAIL)) == MESSAGES
