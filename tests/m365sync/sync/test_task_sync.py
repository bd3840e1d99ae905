"""Task Sync against m365sim's To Do: two-way, delegated only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from m365sync.crm.models import ActivityKind
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import UnitStatus
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"
TASKS = SyncFeature.TASKS


def todo(world: SyncWorld, mailbox: str) -> list[dict[str, Any]]:
    return world.todo_tasks(mailbox)


def crm_tasks(world: SyncWorld) -> list[Any]:
    with world.crm() as crm:
        return crm.activities(ActivityKind.TASK)


def test_tasks_sync_both_ways(world: SyncWorld) -> None:
    made = world.control.post(
        f"/_sim/mailboxes/{ADELE}/todo/lists/default/tasks",
        json={
            "title": "Call Kim back",
            "importance": "high",
            "body": {"content": "About pricing", "contentType": "text"},
        },
    )
    made.raise_for_status()
    due = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=2)
    with world.crm() as crm:
        crm.crm_save_task(
            owner_member_id=world.members[ADELE], title="Send proposal", due_at=due, notes="v2"
        )

    assert world.sync(ADELE, TASKS).outcome == "ok"

    outlook = {t["title"] for t in todo(world, ADELE)}
    assert {"Call Kim back", "Send proposal"} <= outlook
    tasks = {t.subject: t for t in crm_tasks(world)}
    assert set(tasks) == outlook
    assert (tasks["Call Kim back"].importance, tasks["Call Kim back"].body) == (
        "high",
        "About pricing",
    )
    pushed = next(t for t in todo(world, ADELE) if t["title"] == "Send proposal")
    assert pushed["dueDateTime"]["dateTime"].startswith(due.strftime("%Y-%m-%dT%H:%M"))

    world.control.post(
        f"/_sim/mailboxes/{ADELE}/todo/lists/default/tasks/{made.json()['id']}/complete"
    ).raise_for_status()
    with world.crm() as crm:
        crm.crm_delete(tasks["Send proposal"].id)
    world.clear_requests()
    assert world.sync(ADELE, TASKS).outcome == "ok"

    outlook_after = {t["title"] for t in todo(world, ADELE)}
    assert outlook_after == outlook - {"Send proposal"}
    assert {t.subject for t in crm_tasks(world)} == outlook_after
    left = next(t for t in crm_tasks(world) if t.subject == "Call Kim back")
    assert left.status == "completed" and left.completed_at is not None
    world.clear_requests()
    assert world.sync(ADELE, TASKS).outcome == "ok"
    assert [r["method"] for r in world.requests() if r["path"].startswith("/v1.0")] == ["GET"]


def test_task_sync_needs_the_members_own_connection(world: SyncWorld) -> None:
    from m365sync.connections.runtime import ConnectionRuntime

    # The plain runtime: only the service account.
    world.runtime.__class__ = ConnectionRuntime  # type: ignore[assignment]
    result = world.sync(ADELE, TASKS)
    assert result.outcome == "failed"
    assert result.status == UnitStatus.NO_CONNECTION
    assert "own Office 365 connection" in result.error
    assert "Connect your Office 365" in result.fix
