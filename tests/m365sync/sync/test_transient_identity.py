"""Entra ID unwell during a sync: the run ends as "Microsoft unavailable, retrying", the
unit's lease is given back at once, and the next run syncs. Only Entra ID saying the
tenant is unknown parks the unit as needing a reconnect."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from m365sync.connections.models import ConnectionStatus, ServiceAccount
from m365sync.crm.models import ActivityKind
from m365sync.db.base import utcnow
from m365sync.organizations.models import Domain
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit, UnitStatus
from m365sync.sync.service import sync_member
from support.polling import wait_for
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"
DISCOVERY = "openid-configuration"


def inject(world: SyncWorld, **rule: Any) -> None:
    world.control.post("/_sim/faults", json=rule).raise_for_status()


def unit_of(world: SyncWorld, mailbox: str) -> SyncUnit:
    with world.database.session() as session:
        unit = session.query(SyncUnit).filter_by(member_id=world.members[mailbox]).first()
        assert unit is not None
        session.expunge(unit)
        return unit


def account_status(world: SyncWorld) -> ConnectionStatus:
    with world.database.session() as session:
        return session.query(ServiceAccount).one().status


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "500"},
        {"kind": "503"},
        {"kind": "429", "retryAfter": 1},
        {"kind": "garbled"},
    ],
    ids=["500", "503", "429-retry-after", "garbled"],
)
def test_tenant_discovery_failing_is_retried_later_never_a_reconnect(
    world: SyncWorld, fault: dict[str, Any]
) -> None:
    world.settings.graph_max_retries = 2
    attempts = world.settings.graph_max_retries + 1
    inject(world, pathRegex=DISCOVERY, count=attempts, **fault)
    world.add_contact("kim@fabrikam.com")
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Pricing"})

    failed = world.sync(ADELE)

    assert failed.outcome == "failed"
    assert failed.status == UnitStatus.BACKING_OFF
    assert failed.error.startswith("Microsoft unavailable, retrying")
    assert "no tenant" not in failed.error and "domain" not in failed.fix
    assert "retries by itself" in failed.fix
    unit = unit_of(world, ADELE)
    assert unit.status == UnitStatus.BACKING_OFF and unit.lease_owner is None
    assert unit.last_error == failed.error
    assert account_status(world) == ConnectionStatus.ACTIVE  # no credential was blamed
    assert world.control.get("/_sim/faults").json()["injectedCount"] == attempts

    # Run again straight away: not turned away as busy, and Microsoft is back.
    again = world.sync(ADELE)

    assert again.outcome == "ok" and again.status == UnitStatus.ACTIVE
    assert unit_of(world, ADELE).last_error == ""
    with world.crm() as crm:
        assert [a.subject for a in crm.activities(ActivityKind.EMAIL)] == ["Pricing"]


def test_throttled_discovery_waits_as_long_as_microsoft_asks(world: SyncWorld) -> None:
    """A Retry-After longer than the longest in-run wait is not slept through: the unit
    is scheduled for when Microsoft asked, and meanwhile nobody holds it."""
    inject(world, kind="429", pathRegex=DISCOVERY, count=1, retryAfter=900)
    before = utcnow()

    result = world.sync(ADELE)

    assert result.outcome == "failed" and result.status == UnitStatus.BACKING_OFF
    assert "throttling" in result.error and "900 seconds" in result.error
    unit = unit_of(world, ADELE)
    assert unit.lease_owner is None
    assert unit.next_run_at >= before + timedelta(seconds=900)
    assert unit.failure_count == 0  # being throttled is not a failure
    assert world.sync(ADELE).outcome == "ok"


def test_token_endpoint_failing_is_microsoft_unavailable_too(world: SyncWorld) -> None:
    world.settings.graph_max_retries = 1
    inject(world, kind="503", pathRegex="/oauth2/v2.0/token", count=2)

    result = world.sync(ADELE)

    assert result.status == UnitStatus.BACKING_OFF
    assert result.error.startswith("Microsoft unavailable, retrying")
    assert account_status(world) == ConnectionStatus.ACTIVE
    assert world.sync(ADELE).outcome == "ok"


def test_an_unknown_tenant_still_needs_the_admin(world: SyncWorld) -> None:
    """Entra ID answering AADSTS90002 (the tenant does not exist) is not transient."""
    gone = "0badc0de-0000-4000-8000-000000000000"
    with world.database.session() as session:
        session.query(ServiceAccount).one().tenant_id = gone
        session.query(Domain).one().tenant_id = gone

    result = world.sync(ADELE)

    assert result.status == UnitStatus.NEEDS_RECONNECT
    assert "no tenant" in result.error
    assert unit_of(world, ADELE).lease_owner is None


def test_a_run_stopped_midway_gives_its_lease_back(world: SyncWorld) -> None:
    """However a run ends (here: its task cancelled while Graph is slow to answer, as when
    the server stops), the next run finds the unit free instead of "already running"."""
    inject(world, kind="delay", delayMs=3000, pathRegex="/messages", count=1)

    async def stop_midway() -> None:
        task = asyncio.create_task(
            sync_member(
                world.database,
                world.runtime,
                world.members[ADELE],
                SyncFeature.EMAIL,
                settings=world.engine,
            )
        )
        # Graph holds the answer back: the run is under way, holding the lease.
        await asyncio.to_thread(
            wait_for, lambda: world.control.get("/_sim/faults").json()["injectedCount"]
        )
        assert unit_of(world, ADELE).lease_owner is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await world.runtime.aclose()

    asyncio.run(stop_midway())

    assert unit_of(world, ADELE).lease_owner is None
    assert world.sync(ADELE).outcome == "ok"
