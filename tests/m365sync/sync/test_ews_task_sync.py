"""Task Sync over EWS: a member whose mailbox is on an Exchange Server syncs the Tasks
folder through their own Exchange connection, both ways, against m365sim's Exchange
Server read and written by the product's exchangelib client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from exchangelib import Task

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm.models import ActivityKind
from m365sync.microsoft.ews import ExchangeLogin, ExchangeServer, close_exchange_connections
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncCursor
from support.crashes import crash_recording_once
from support.ews_clients import USER_PASSWORD
from support.ews_world import exchange_only, store_exchange_user_connection
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"
TASKS = SyncFeature.TASKS


@pytest.fixture
def world(db_world: SyncWorld) -> Iterator[SyncWorld]:
    """Every test here runs on SQLite and on PostgreSQL. The plain runtime: no Office 365
    connection serves Adele's tasks, her own Exchange connection does."""
    exchange_only(db_world)
    db_world.runtime.__class__ = ConnectionRuntime  # type: ignore[assignment]
    store_exchange_user_connection(db_world, ADELE)
    yield db_world
    close_exchange_connections()


def adele_tasks(world: SyncWorld) -> dict[str, Task]:
    """Adele's Tasks folder, as she sees it over EWS."""
    server = ExchangeServer(
        world.settings,
        f"{world.sim.url}/EWS/Exchange.asmx",
        ExchangeLogin(ADELE, USER_PASSWORD),
        impersonation=False,
    )
    return {t.subject: t for t in server.account(ADELE).tasks.all() if isinstance(t, Task)}


def crm_tasks(world: SyncWorld) -> dict[str, Any]:
    with world.crm() as crm:
        return {t.subject: t for t in crm.activities(ActivityKind.TASK)}


def synced(world: SyncWorld) -> None:
    result = world.sync(ADELE, TASKS)
    assert result.outcome == "ok", (result.error, result.fix)


def test_tasks_sync_both_ways_over_ews(world: SyncWorld) -> None:
    server = ExchangeServer(
        world.settings,
        f"{world.sim.url}/EWS/Exchange.asmx",
        ExchangeLogin(ADELE, USER_PASSWORD),
        impersonation=False,
    )
    account = server.account(ADELE)
    made = Task(account=account, folder=account.tasks, subject="Call Kim back", importance="High")
    made.save()
    due = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    with world.crm() as crm:
        crm.crm_save_task(
            owner_member_id=world.members[ADELE], title="Send proposal", due_at=due, notes="v2"
        )
    world.clear_requests()

    synced(world)
    assert not world.requests(path_contains="/v1.0/"), "never through Graph"
    exchange = adele_tasks(world)
    assert {"Call Kim back", "Send proposal"} <= set(exchange)
    assert exchange["Send proposal"].due_date == due.date()
    tasks = crm_tasks(world)
    assert set(tasks) == set(exchange)
    assert tasks["Call Kim back"].importance == "high"
    with world.database.session() as session:
        (cursor,) = [c for c in session.query(SyncCursor).all() if c.key == "todo"]
        assert cursor.delta_link and not cursor.delta_link.startswith("http")  # a SyncState

    # Completed in Exchange, deleted in the CRM: both sides follow.
    made.refresh()
    made.status = "Completed"
    made.save(update_fields=["status"])
    with world.crm() as crm:
        crm.crm_delete(tasks["Send proposal"].id)
    synced(world)
    after = adele_tasks(world)
    assert "Send proposal" not in after
    assert set(crm_tasks(world)) == set(after)
    left = crm_tasks(world)["Call Kim back"]
    assert left.status == "completed"

    # Deleted in Exchange: gone from the CRM.
    after["Call Kim back"].delete()
    synced(world)
    assert "Call Kim back" not in crm_tasks(world)


def test_a_crash_after_exchange_created_the_task_leaves_one_copy(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between Exchange's answer to the task's CreateItem and the local
    record of it: the retry finds the stamped task instead of creating a second one."""
    with world.crm() as crm:
        crm.crm_save_task(owner_member_id=world.members[ADELE], title="Send proposal")
    died = crash_recording_once(monkeypatch)
    assert world.sync(ADELE, TASKS).outcome == "failed"
    assert died == [True]
    assert list(adele_tasks(world)) == ["Send proposal"]

    synced(world)
    synced(world)
    assert [t.subject for t in adele_tasks(world).values()] == ["Send proposal"]
    assert len(world.todo_tasks(ADELE)) == 1
    assert list(crm_tasks(world)) == ["Send proposal"]
