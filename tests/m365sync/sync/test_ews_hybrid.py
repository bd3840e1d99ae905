"""A hybrid organization: Graph says a mailbox is on-premises (MailboxNotEnabledForRESTAPI),
so the organization's Exchange connection syncs it over EWS, and the unit remembers which
protocol serves it; a mailbox moved to Exchange Online goes back to Graph, keeping its
activities without a duplicate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from m365sync.crm.models import ActivityKind
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.sync import service as sync
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import UnitStatus
from support.ews_clients import turn_on_exchange
from support.ews_world import store_exchange_service_account, store_exchange_user_connection
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"  # in Exchange Online
DIEGO = "diego@contoso.com"  # on the Exchange Server


@pytest.fixture
def world(db_world: SyncWorld) -> Iterator[SyncWorld]:
    """Contoso with an Office 365 service account and an Exchange one; Diego's mailbox on
    premises. Runs on SQLite and on PostgreSQL."""
    close_exchange_connections()
    turn_on_exchange(db_world.sim, flavour="hybrid")
    store_exchange_service_account(db_world)
    place(db_world, DIEGO, "onprem")
    account = db_world.add_account("Fabrikam", ["fabrikam.com"])
    db_world.add_contact("kim@fabrikam.com", account, "Kim Akers")
    yield db_world
    close_exchange_connections()


def place(world: SyncWorld, mailbox: str, location: str) -> None:
    world.control.patch(
        f"/_sim/tenants/contoso.com/users/{mailbox}", json={"mailboxLocation": location}
    ).raise_for_status()


def served_by(world: SyncWorld) -> dict[str, str]:
    with world.database.session() as session:
        units = sync.mailbox_units(session, world.organization_id)
        return {
            email: unit.protocol
            for unit in units
            for email, member_id in world.members.items()
            if member_id == unit.member_id
        }


def subjects(world: SyncWorld) -> list[str]:
    with world.crm() as crm:
        return sorted(a.subject for a in crm.activities(ActivityKind.EMAIL))


def graph_requests_for(world: SyncWorld, mailbox: str) -> list[dict[str, object]]:
    return [
        r
        for r in world.requests(path_contains="/v1.0/")
        if str(r.get("mailbox") or "").lower() == mailbox
    ]


def test_one_mailbox_on_each_side(world: SyncWorld) -> None:
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Cloud mail"})
    world.deliver(DIEGO, **{"from": "kim@fabrikam.com", "subject": "On-premises mail"})

    for mailbox in (ADELE, DIEGO):
        result = world.sync(mailbox)
        assert result.outcome == "ok", (mailbox, result.error, result.fix)
        assert result.status == UnitStatus.ACTIVE
    assert subjects(world) == ["Cloud mail", "On-premises mail"]
    assert served_by(world) == {ADELE: "graph", DIEGO: "ews"}

    # the next run goes straight to the Exchange Server: Graph is not asked again
    world.deliver(DIEGO, **{"from": "kim@fabrikam.com", "subject": "More on-premises mail"})
    world.clear_requests()
    assert world.sync(DIEGO).outcome == "ok"
    assert graph_requests_for(world, DIEGO) == []
    assert "More on-premises mail" in subjects(world)


def test_a_mailbox_moved_to_exchange_online_keeps_its_activities(world: SyncWorld) -> None:
    world.deliver(DIEGO, **{"from": "kim@fabrikam.com", "subject": "Before the move"})
    assert world.sync(DIEGO).outcome == "ok"
    assert served_by(world) == {DIEGO: "ews"}

    place(world, DIEGO, "cloud")
    world.deliver(DIEGO, **{"from": "kim@fabrikam.com", "subject": "After the move"})
    moved = world.sync(DIEGO)

    assert moved.outcome == "ok", (moved.error, moved.fix)
    assert served_by(world) == {DIEGO: "graph"}
    assert subjects(world) == ["After the move", "Before the move"]  # no duplicate
    assert world.sync(DIEGO).outcome == "ok"
    assert subjects(world) == ["After the move", "Before the move"]


def test_a_meeting_across_the_hybrid_is_one_event_and_survives_the_move(
    world: SyncWorld,
) -> None:
    """Adele (Exchange Online, Graph) invites Diego (Exchange Server, EWS): one CRM event
    linked to both; Diego's mailbox moving to Exchange Online keeps it one event."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    made = world.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": "Hybrid planning",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "attendees": [{"emailAddress": {"address": DIEGO}}],
        },
    )
    made.raise_for_status()
    for mailbox in (ADELE, DIEGO):
        result = world.sync(mailbox, SyncFeature.CALENDAR)
        assert result.outcome == "ok", (mailbox, result.error, result.fix)

    def events() -> list[tuple[str, str | None, set[str]]]:
        with world.crm() as crm:
            return [
                (e.subject, e.external_id, {m.member_id for m in crm.activity_members(e.id)})
                for e in crm.activities(ActivityKind.EVENT)
            ]

    both = {world.members[ADELE], world.members[DIEGO]}
    assert events() == [("Hybrid planning", made.json()["iCalUId"], both)]

    place(world, DIEGO, "cloud")
    moved = world.sync(DIEGO, SyncFeature.CALENDAR)
    assert moved.outcome == "ok", (moved.error, moved.fix)
    assert events() == [("Hybrid planning", made.json()["iCalUId"], both)]


def test_tasks_synced_over_ews_stay_one_task_each_after_the_move(world: SyncWorld) -> None:
    """To Do and EWS name a task with unrelated ids: the move's first round over Graph
    finds Diego's tasks by title and due day, so each stays one CRM task, still two-way."""
    store_exchange_user_connection(world, DIEGO)
    due = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3)
    for title, when in (("Call Kim back", None), ("Send proposal", due)):
        body: dict[str, object] = {"title": title}
        if when is not None:
            body["dueDateTime"] = {
                "dateTime": when.strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            }
        world.control.post(
            f"/_sim/mailboxes/{DIEGO}/todo/lists/default/tasks", json=body
        ).raise_for_status()
    first = world.sync(DIEGO, SyncFeature.TASKS)
    assert first.outcome == "ok", (first.error, first.fix)
    assert served_by(world) == {DIEGO: "ews"}

    def tasks() -> list[str]:
        with world.crm() as crm:
            return sorted(t.subject for t in crm.activities(ActivityKind.TASK))

    assert tasks() == ["Call Kim back", "Send proposal"]

    place(world, DIEGO, "cloud")
    moved = world.sync(DIEGO, SyncFeature.TASKS)
    assert moved.outcome == "ok", (moved.error, moved.fix)
    assert served_by(world) == {DIEGO: "graph"}
    assert tasks() == ["Call Kim back", "Send proposal"]  # no task doubled

    # still linked: a CRM edit reaches the To Do task, and nothing is created twice
    with world.crm() as crm:
        (proposal,) = [t for t in crm.activities(ActivityKind.TASK) if t.subject == "Send proposal"]
        crm.crm_save_task(
            activity_id=proposal.id,
            owner_member_id=world.members[DIEGO],
            title="Send proposal v2",
            due_at=due,
            notes="",
        )
    assert world.sync(DIEGO, SyncFeature.TASKS).outcome == "ok"
    assert sorted(t["title"] for t in world.todo_tasks(DIEGO)) == [
        "Call Kim back",
        "Send proposal v2",
    ]
    assert tasks() == ["Call Kim back", "Send proposal v2"]
