"""Many mailboxes syncing at once against Graph's real latency and concurrency limit.

Outlook refuses a fifth request in flight from one app to one mailbox with 429
"Application is over its MailboxConcurrency limit."; with m365sim's realistic latency
that limit bites exactly as in production, so this proves the engine stays under it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import SyncWorld, build_world

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sync.crm.models import ActivityKind
from m365sync.sync.scheduler import Scheduler
from m365sync.sync.service import UnitResult

REPS = tuple(f"rep{n:02d}@contoso.com" for n in range(1, 21))
CUSTOMERS = [("Kim Akers", "kim@fabrikam.com"), ("Ben Walters", "ben@fabrikam.com")]


@pytest.mark.realistic_latency
def test_twenty_mailboxes_syncing_at_once_never_exceed_the_mailbox_concurrency_limit(
    sim: SimServer, tmp_path: Path
) -> None:
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
    sim.state.reset()
    load_seed(sim.state, data)
    for address in REPS:
        response = sim_post(sim, "/_sim/tenants/contoso.com/users", {"userPrincipalName": address})
        assert response.status_code == 201, response.text
    # Every rep's Email Sync and Calendar Sync run at once, as the scheduler runs due units.
    world = build_world(
        sim, tmp_path, REPS, sync_max_parallel_units=2 * len(REPS), sync_request_budget=200
    )
    try:
        account = world.add_account("Fabrikam", ["fabrikam.com"])
        for name, address in CUSTOMERS:
            world.add_contact(address, account, name)
        correspondents = [{"name": name, "address": address} for name, address in CUSTOMERS]
        for seed, rep in enumerate(REPS, start=1):
            # More than one page per folder (the engine's pages hold 200 messages).
            world.generate(rep, 450, correspondents=correspondents, seed=seed)
        world.clear_requests()

        results = asyncio.run(tick(world))

        assert len(results) == 2 * len(REPS)
        assert [r.outcome for r in results] == ["ok"] * len(results), [
            (r.error, r.fix) for r in results if r.outcome != "ok"
        ]
        log = world.requests()
        assert Counter(record["status"] for record in log)[429] == 0
        assert most_in_flight(log) > 4  # the mailboxes really were synced at once
        with world.crm() as crm:
            assert len(crm.activities(ActivityKind.EMAIL)) == 450 * len(REPS)
    finally:
        world.control.close()
        world.database.dispose()


async def tick(world: SyncWorld) -> list[UnitResult]:
    scheduler = Scheduler(world.database, world.runtime, world.engine, tick_seconds=60)
    try:
        return await scheduler.tick()
    finally:
        await world.runtime.aclose()


def most_in_flight(log: list[dict[str, Any]]) -> int:
    """The most requests m365sim was answering at one moment (from its request log)."""
    edges: list[tuple[datetime, int]] = []
    for record in log:
        start = datetime.fromisoformat(record["startedAt"])
        edges += [(start, 1), (start + timedelta(milliseconds=record["durationMs"]), -1)]
    most = current = 0
    for _, step in sorted(edges):
        current += step
        most = max(most, current)
    return most


def sim_post(sim: SimServer, path: str, body: dict[str, Any]) -> httpx.Response:
    verify = ssl.create_default_context(cafile=str(sim.tls.ca_bundle))
    return httpx.post(f"{sim.url}{path}", json=body, verify=verify)


@pytest.mark.realistic_latency
def test_a_burst_of_reads_to_one_mailbox_waits_its_turn_instead_of_drawing_429s(
    world: SyncWorld,
) -> None:
    world.generate("adele@contoso.com", 30)
    world.clear_requests()

    async def burst() -> list[dict[str, Any]]:
        async with world.graph() as graph:
            return list(
                await asyncio.gather(
                    *(graph.get_json("/users/adele@contoso.com/messages") for _ in range(24))
                )
            )

    pages = asyncio.run(burst())

    assert len(pages) == 24
    assert [record["status"] for record in world.requests()] == [200] * 24
