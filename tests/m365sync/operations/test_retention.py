"""Retention and erasure on what the sync really logged from m365sim: purging old bodies
and activities, and forgetting one person on request, both audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sync.audit import service as audit
from m365sync.crm.models import ActivityKind, CrmContact
from m365sync.errors import ValidationFailed
from m365sync.operations.retention import erase, purge
from support.sync_world import SyncWorld, build_world

MAILBOXES = ("adele@contoso.com", "alex@contoso.com")


@pytest.fixture
def world(sim: SimServer, tmp_path: Path) -> Iterator[SyncWorld]:
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
    sim.state.reset()
    load_seed(sim.state, data)
    w = build_world(sim, tmp_path, MAILBOXES)
    yield w
    w.control.close()
    w.database.dispose()


def ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def logged(world: SyncWorld) -> dict[str, str | None]:
    with world.crm() as crm:
        return {a.subject: a.body for a in crm.activities(ActivityKind.EMAIL)}


def test_erase_forgets_one_person_and_keeps_everyone_else(world: SyncWorld) -> None:
    world.add_contact("kim@fabrikam.com", name="Kim Buyer")
    world.add_contact("lee@fabrikam.com")
    adele, alex = MAILBOXES
    world.deliver(adele, **{"from": "kim@fabrikam.com", "subject": "Kim's pricing"})
    world.deliver(
        alex,
        **{"from": "lee@fabrikam.com", "subject": "Lee, Kim copied", "cc": ["kim@fabrikam.com"]},
    )
    world.deliver(alex, **{"from": "lee@fabrikam.com", "subject": "Lee alone"})
    for mailbox in MAILBOXES:
        assert world.sync(mailbox).outcome == "ok"
    assert set(logged(world)) == {"Kim's pricing", "Lee, Kim copied", "Lee alone"}

    with world.database.session() as session:
        report = erase(session, world.organization_id, "Kim@Fabrikam.com", actor="dpo@contoso.com")

    assert report.activities == 2 and report.people == 1
    assert set(logged(world)) == {"Lee alone"}
    with world.database.session() as session:
        contacts = {c.email for c in session.query(CrmContact)}
        event = audit.list_events(session, world.organization_id)[0]
        assert contacts == {"lee@fabrikam.com"}
        assert event.action == "privacy.erase" and event.actor == "dpo@contoso.com"
        assert "kim" not in f"{event.target} {event.detail}".lower()
        assert event.detail["activities_deleted"] == 2

    # Kim is no longer a contact: her next email is not logged.
    world.deliver(adele, **{"from": "kim@fabrikam.com", "subject": "Kim again"})
    assert world.sync(adele).outcome == "ok"
    assert set(logged(world)) == {"Lee alone"}


def test_purge_drops_old_bodies_then_old_activities(world: SyncWorld) -> None:
    world.add_contact("kim@fabrikam.com")
    world.configure(backfill_days=0)  # everything, however old
    adele = MAILBOXES[0]
    for days, subject in ((200, "Last year"), (50, "Two months ago"), (1, "Yesterday")):
        world.deliver(
            adele,
            **{
                "from": "kim@fabrikam.com",
                "subject": subject,
                "body": f"<p>{subject} body</p>",
                "receivedDateTime": ago(days),
            },
        )
    assert world.sync(adele).outcome == "ok"

    with world.database.session() as session:
        report = purge(session, bodies_older_than=40, actor="cli")
    bodies = logged(world)
    assert report.bodies == 2 and bodies["Last year"] is None and bodies["Two months ago"] is None
    assert "Yesterday body" in str(bodies["Yesterday"])

    with world.database.session() as session:
        report = purge(session, activities_older_than=100, actor="cli")
        event = audit.list_events(session, world.organization_id)[0]
    assert report.activities == 1 and set(logged(world)) == {"Two months ago", "Yesterday"}
    assert event.action == "retention.purge" and event.detail["activities_deleted"] == 1

    with world.database.session() as session, pytest.raises(ValidationFailed) as refused:
        purge(session, activities_older_than=20, actor="cli")
    assert "sync window (30 days)" in refused.value.message
    assert len(logged(world)) == 2
