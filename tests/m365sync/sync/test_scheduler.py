"""Scheduling the work: parking with the fix shown, back-off, Retry-After, stuck units,
forced resyncs — against m365sim's access policies and fault injector."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from harness import SERVICE_APP, SyncWorld

from m365sync.crm.models import ActivityKind
from m365sync.db.base import utcnow
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit, UnitStage, UnitStatus
from m365sync.sync.repository import SyncRepository
from m365sync.sync.scheduler import Scheduler

ADELE = "adele@contoso.com"


def unit_of(world: SyncWorld, mailbox: str, feature: SyncFeature = SyncFeature.EMAIL) -> SyncUnit:
    with world.database.session() as s:
        repo = SyncRepository(s)
        member = repo.member(world.members[mailbox])
        assert member is not None
        return repo.ensure_unit(member, feature)


def make_due(world: SyncWorld, unit_id: str) -> None:
    with world.database.session() as s:
        SyncRepository(s).schedule_now(unit_id)


def tick(world: SyncWorld) -> None:
    scheduler = Scheduler(world.database, world.runtime, world.engine)

    async def go() -> None:
        try:
            await scheduler.tick()
        finally:
            await world.runtime.aclose()

    asyncio.run(go())


def test_scheduler_syncs_every_member_and_feature(world: SyncWorld) -> None:
    world.add_contact("kim@fabrikam.com")
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Hi"})
    tick(world)
    with world.database.session() as s:
        units = SyncRepository(s).units(world.organization_id)
    assert {(u.feature, u.status) for u in units} == {
        (SyncFeature.EMAIL, UnitStatus.ACTIVE),
        (SyncFeature.CALENDAR, UnitStatus.ACTIVE),
    }
    assert len(units) == 6
    assert all(u.next_run_at > utcnow() + timedelta(seconds=250) for u in units)
    with world.crm() as crm:
        assert crm.count_activities(ActivityKind.EMAIL) == 1


def test_access_policy_parks_the_unit_with_the_fix_and_it_resumes_when_fixed(
    world: SyncWorld,
) -> None:
    policies = "/_sim/tenants/contoso.com/accessPolicies"
    # About what a policy decides, not when: this test lets policy changes reach Graph at
    # once (the default is Exchange's propagation delay, see docs/m365sim/access-and-limits.md).
    world.sim_config(policy_propagation_seconds=0)
    created = world.control.post(
        policies,
        json={"AppId": SERVICE_APP, "PolicyScopeGroupId": ADELE, "AccessRight": "DenyAccess"},
    )
    created.raise_for_status()
    unit = unit_of(world, ADELE)

    result = world.sync(ADELE)

    assert result.status == UnitStatus.BLOCKED_BY_POLICY
    parked = unit_of(world, ADELE)
    assert "Application Access Policy" in parked.last_error
    assert "security group" in parked.last_error_fix
    assert parked.next_run_at > utcnow() + timedelta(
        seconds=world.engine.sync_parked_retry_seconds - 5
    )
    assert parked.stage == UnitStage.IDLE and parked.failure_count == 1

    from urllib.parse import quote

    identity = created.json()["value"][0]["Identity"]
    world.control.delete(f"{policies}/{quote(identity, safe='')}").raise_for_status()
    make_due(world, unit.id)  # the parked re-check interval has passed
    tick(world)

    resumed = unit_of(world, ADELE)
    assert (
        resumed.status == UnitStatus.ACTIVE
        and resumed.failure_count == 0
        and resumed.last_error == ""
    )


def test_transient_failures_back_off_and_long_retry_after_is_honoured(world: SyncWorld) -> None:
    world.control.post(
        "/_sim/faults", json={"kind": "500", "pathRegex": "/delta", "count": 50}
    ).raise_for_status()
    result = world.sync(ADELE)
    unit = unit_of(world, ADELE)
    assert result.status == UnitStatus.BACKING_OFF and unit.failure_count == 1
    assert utcnow() + timedelta(seconds=15) < unit.next_run_at < utcnow() + timedelta(seconds=60)

    world.control.delete("/_sim/faults").raise_for_status()
    world.control.post(
        "/_sim/faults", json={"kind": "429", "pathRegex": "/delta", "retryAfter": 120}
    ).raise_for_status()
    result = world.sync(ADELE)
    unit = unit_of(world, ADELE)
    assert result.status == UnitStatus.BACKING_OFF
    assert utcnow() + timedelta(seconds=100) < unit.next_run_at < utcnow() + timedelta(seconds=125)

    world.control.delete("/_sim/faults").raise_for_status()
    assert world.sync(ADELE).status == UnitStatus.ACTIVE


def test_stuck_units_are_reset_and_run_again(world: SyncWorld) -> None:
    unit = unit_of(world, ADELE)
    with world.database.session() as s:
        row = s.get(SyncUnit, unit.id)
        assert row is not None
        row.stage = UnitStage.INITIAL_SYNC
        row.stage_started_at = utcnow() - timedelta(hours=2)
        row.lease_owner = "dead-worker"
        row.lease_expires_at = utcnow() - timedelta(minutes=30)
        row.next_run_at = utcnow() + timedelta(hours=1)
    tick(world)
    after = unit_of(world, ADELE)
    assert (
        after.status == UnitStatus.ACTIVE
        and after.stage == UnitStage.IDLE
        and after.lease_owner is None
    )


def test_admin_forced_full_resync_rereads_without_duplicates(world: SyncWorld) -> None:
    world.add_contact("kim@fabrikam.com")
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "One"})
    assert world.sync(ADELE).outcome == "ok"
    unit = unit_of(world, ADELE)
    with world.database.session() as s:
        repo = SyncRepository(s)
        row = repo.unit(unit.id)
        assert row is not None
        repo.request_full_resync(row)
    world.clear_requests()
    result = world.sync(ADELE)
    assert result.outcome == "ok"
    first_round = [r for r in world.requests() if r["path"].endswith("/delta")]
    assert first_round and all("deltatoken" not in r["query"] for r in first_round)
    assert not unit_of(world, ADELE).full_resync_requested
    with world.crm() as crm:
        assert crm.count_activities(ActivityKind.EMAIL) == 1


def test_a_long_first_sync_does_not_delay_another_mailboxs_notified_unit(
    world: SyncWorld,
) -> None:
    """Units run independently: while Adele's long first sync is still running, a
    notification for Alex's mailbox is synced at once."""
    import threading
    import time

    from harness import wait_for

    alex = "alex@contoso.com"
    world.add_contact("kim@fabrikam.com")
    world.sim_config(throttling_enabled=False)
    world.engine.sync_page_size = 10
    world.generate(ADELE, 200, correspondents=["kim@fabrikam.com"], days=5, seed=2)
    # Adele's mailbox answers slowly: 20 pages, 0.4 s each.
    world.control.post(
        "/_sim/faults",
        json={
            "kind": "delay",
            "delayMs": 400,
            "pathRegex": "/messages/delta",
            "mailbox": ADELE,
            "count": 1000,
        },
    ).raise_for_status()
    scheduler = Scheduler(world.database, world.runtime, world.engine, tick_seconds=60)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(
        target=lambda: loop.run_until_complete(scheduler.run_forever(stop)), daemon=True
    )
    runner.start()
    try:
        adele_email = unit_of(world, ADELE).id
        alex_email = unit_of(world, alex).id

        def alex_done() -> bool:
            with world.database.session() as s:
                unit = SyncRepository(s).unit(alex_email)
                return unit is not None and unit.last_success_at is not None

        wait_for(alex_done, 15)
        assert adele_email in scheduler.running  # Adele's first sync goes on

        world.deliver(alex, **{"from": "kim@fabrikam.com", "subject": "Notified"})
        notified_at = time.monotonic()
        scheduler.dispatch(alex_email)

        def logged() -> bool:
            with world.crm() as crm:
                return any(a.subject == "Notified" for a in crm.activities(ActivityKind.EMAIL))

        wait_for(logged, 5)
        assert time.monotonic() - notified_at < 5
        assert adele_email in scheduler.running  # ... and is still running now
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(15)
