"""The numbers the dashboard shows about a mailbox: items synced counted once however often
the mailbox is resynced, the health charts' samples, a first sync's progress, and the tiles
(members and mailboxes, a member's disconnect not needing attention)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from m365sync.db.base import utcnow
from m365sync.sync import service as sync
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit, UnitStage, UnitStatus
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"


@pytest.fixture
def world(db_world: SyncWorld) -> SyncWorld:
    """On SQLite and on PostgreSQL (the health samples are an upsert on each)."""
    return db_world


def _known_sender(world: SyncWorld) -> None:
    account = world.add_account("Fabrikam", ["fabrikam.com"])
    world.add_contact("kim@fabrikam.com", account, "Kim Akers")


def test_synced_counts_distinct_items_and_a_resync_does_not_grow_it(world: SyncWorld) -> None:
    _known_sender(world)
    for n in range(3):
        world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": f"Offer {n}"})
    assert world.sync(ADELE).outcome == "ok"
    assert world.sync(ADELE, full=True).outcome == "ok"  # a full resync reads them again

    with world.database.session() as session:
        overview = sync.mailbox_overview(session, world.organization_id)
    assert overview.held[(world.members[ADELE], "email")] == 3
    # One mailbox, counted once: not once per feature.
    assert overview.health.mailboxes == 1 and overview.health.healthy == 1


def test_each_run_adds_to_the_health_charts(world: SyncWorld) -> None:
    _known_sender(world)
    for n in range(2):
        world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": f"Hello {n}"})
    world.sync(ADELE)
    world.sync(ADELE, SyncFeature.CALENDAR)

    with world.database.session() as session:
        org = sync.health_history(session, world.organization_id, hours=1)
        adele = sync.health_history(session, world.organization_id, world.members[ADELE], hours=1)
    assert len(org) == 12  # every five minutes of the hour, idle ones as zeros
    assert sum(p.items_logged for p in org) == 2 == sum(p.items_logged for p in adele)
    assert sum(p.errors for p in org) == 0


def test_first_sync_progress_reads_done_of_expected_with_rate_and_time_left() -> None:
    now = utcnow()
    unit = SyncUnit(
        stage=UnitStage.INITIAL_SYNC,
        stage_started_at=now - timedelta(seconds=10),
        lease_owner="worker",
        counts={"run_items": 200, "run_expected": 1000},
    )
    progress = sync.first_sync_progress(unit, now)
    assert progress is not None
    assert (progress.done, progress.expected, progress.per_second) == (200, 1000, 20.0)
    assert progress.seconds_left == 40.0
    unit.stage = UnitStage.INCREMENTAL
    assert sync.first_sync_progress(unit, now) is None


def test_disconnect_is_a_choice_not_a_problem() -> None:
    units = [
        SyncUnit(member_id="m1", status=UnitStatus.DISCONNECTED, stage=UnitStage.IDLE),
        SyncUnit(member_id="m1", status=UnitStatus.DISCONNECTED, stage=UnitStage.IDLE),
        SyncUnit(member_id="m2", status=UnitStatus.ACTIVE, stage=UnitStage.IDLE),
        SyncUnit(member_id="m3", status=UnitStatus.NEEDS_CONSENT, stage=UnitStage.IDLE),
    ]
    summary = sync.health(units, members=4)
    assert (summary.members, summary.mailboxes) == (4, 3)
    assert (summary.disconnected, summary.healthy, summary.parked) == (1, 1, 1)
    assert summary.parked_reasons == {"needs consent": 1}
