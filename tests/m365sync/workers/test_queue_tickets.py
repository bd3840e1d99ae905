"""Units handed to the Celery queue carry a ticket: however many messages reach the
workers (delivered twice, left over from a lost worker), a unit runs once per ticket, and
a unit whose message or worker was lost is queued again once its lease passes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sync.crm.models import ActivityKind
from m365sync.db.base import utcnow
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit
from m365sync.sync.repository import SyncRepository
from m365sync.sync.scheduler import prepare_units, queue_due_units
from m365sync.sync.service import UnitResult, run_unit
from support.sync_world import SyncWorld, build_world


@pytest.fixture
def world(sim: SimServer, tmp_path: Path) -> Iterator[SyncWorld]:
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
    sim.state.reset()
    load_seed(sim.state, data)
    w = build_world(sim, tmp_path, ["adele@contoso.com"])
    yield w
    w.control.close()
    w.database.dispose()


def queue(world: SyncWorld) -> dict[str, str]:
    sent: dict[str, str] = {}
    queue_due_units(world.database, world.engine, sent.__setitem__, limit=10)
    return sent


def run(world: SyncWorld, unit_id: str, ticket: str) -> UnitResult:
    async def go() -> UnitResult:
        try:
            return await run_unit(
                world.database, world.runtime, unit_id, settings=world.engine, ticket=ticket
            )
        finally:
            await world.runtime.aclose()

    return asyncio.run(go())


def email_unit(world: SyncWorld) -> str:
    with world.database.session() as session:
        return next(u.id for u in SyncRepository(session).units() if u.feature == SyncFeature.EMAIL)


def emails(world: SyncWorld) -> list[str]:
    with world.crm() as crm:
        return sorted(a.subject for a in crm.activities(ActivityKind.EMAIL))


def test_a_message_delivered_twice_runs_the_unit_once(world: SyncWorld) -> None:
    world.add_contact("kim@fabrikam.com")
    world.deliver("adele@contoso.com", **{"from": "kim@fabrikam.com", "subject": "Quote"})
    prepare_units(world.database, world.engine)
    sent = queue(world)
    unit_id = email_unit(world)
    assert unit_id in sent and len(sent) == 2  # Email and Calendar Sync
    assert queue(world) == {}  # queued already: not again

    first = run(world, unit_id, sent[unit_id])
    again = run(world, unit_id, sent[unit_id])

    assert first.outcome == "ok" and first.progress.logged == 1
    assert again.outcome == "stale" and again.progress.items == 0
    assert emails(world) == ["Quote"]


def test_a_lost_message_is_replaced_and_the_old_one_does_nothing(world: SyncWorld) -> None:
    world.add_contact("kim@fabrikam.com")
    world.deliver("adele@contoso.com", **{"from": "kim@fabrikam.com", "subject": "Quote"})
    prepare_units(world.database, world.engine)
    unit_id = email_unit(world)
    lost = queue(world)[unit_id]
    with world.database.session() as session:  # a lease's time passes without a run
        session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id)
            .values(queued_at=utcnow() - timedelta(seconds=world.engine.sync_lease_seconds + 1))
        )

    replacement = queue(world)[unit_id]

    assert replacement != lost
    assert run(world, unit_id, lost).outcome == "stale"
    assert run(world, unit_id, replacement).outcome == "ok"
    assert emails(world) == ["Quote"]


def test_a_unit_whose_worker_died_is_queued_again_once_its_lease_passes(
    world: SyncWorld,
) -> None:
    prepare_units(world.database, world.engine)
    unit_id = email_unit(world)
    ticket = queue(world)[unit_id]
    with world.database.session() as session:  # a worker takes it, then dies
        assert SyncRepository(session).try_lease(unit_id, "dead-worker", 300, ticket=ticket)
    assert unit_id not in queue(world)  # its lease is live: nobody else runs it

    with world.database.session() as session:  # the lease passes
        session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    again = queue(world)

    assert unit_id in again
    assert run(world, unit_id, again[unit_id]).outcome == "ok"


def test_a_run_asked_for_during_a_run_is_not_lost(world: SyncWorld) -> None:
    """A change notification while a unit runs: what it announced may come after the
    run's delta round, so the unit stays due when the run ends."""
    world.add_contact("kim@fabrikam.com")
    world.deliver("adele@contoso.com", **{"from": "kim@fabrikam.com", "subject": "One"})
    prepare_units(world.database, world.engine)
    unit_id = email_unit(world)

    def notified(_: object) -> None:
        with world.database.session() as session:
            SyncRepository(session).schedule_now(unit_id)

    async def go() -> UnitResult:
        try:
            return await run_unit(
                world.database,
                world.runtime,
                unit_id,
                settings=world.engine,
                on_progress=notified,
            )
        finally:
            await world.runtime.aclose()

    assert asyncio.run(go()).outcome == "ok"
    with world.database.session() as session:
        unit = SyncRepository(session).unit(unit_id)
        assert unit is not None and unit.next_run_at <= utcnow()
    assert world.sync("adele@contoso.com").outcome == "ok"
    with world.database.session() as session:
        unit = SyncRepository(session).unit(unit_id)
        assert unit is not None and unit.next_run_at > utcnow()  # a plain run: next poll


def test_first_syncs_leave_room_for_incremental_syncs(sim: SimServer, tmp_path: Path) -> None:
    """Three new mailboxes (six first syncs) have waited longest; one mailbox synced before
    has an incremental sync due. The incremental sync is queued first, and no more first
    syncs run or wait at once than ``sync_max_first_syncs``: pool processes stay free."""
    mailboxes = ["adele@contoso.com", "alex@contoso.com", "ben@contoso.com", "kim@contoso.com"]
    world = build_world(sim, tmp_path, mailboxes, sync_max_first_syncs=2)
    try:
        prepare_units(world.database, world.engine)
        now = utcnow()
        with world.database.session() as session:
            units = SyncRepository(session).units()
            session.execute(update(SyncUnit).values(next_run_at=now - timedelta(hours=1)))
            synced = next(
                u.id
                for u in units
                if u.member_id == world.members["kim@contoso.com"]
                and u.feature == SyncFeature.EMAIL
            )
            session.execute(  # synced an hour ago, due now: an incremental sync
                update(SyncUnit)
                .where(SyncUnit.id == synced)
                .values(last_success_at=now - timedelta(hours=1), next_run_at=now)
            )

        first = list(queue(world))
        assert first[0] == synced  # the incremental sync, though due last
        assert len(first) == 3  # and two first syncs: the cap
        assert queue(world) == {}  # both still waiting: no third first sync

        finished = run(world, first[1], queue_ticket(world, first[1]))
        assert finished.outcome == "ok"
        assert len(queue(world)) == 1  # one first sync done: room for one more
    finally:
        world.control.close()
        world.database.dispose()


def queue_ticket(world: SyncWorld, unit_id: str) -> str:
    with world.database.session() as session:
        unit = SyncRepository(session).unit(unit_id)
        assert unit is not None and unit.queue_ticket is not None
        return unit.queue_ticket
