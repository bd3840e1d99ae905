"""Calendar Sync, both ways, against m365sim (which records every invitation it sends)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from m365sync.crm.models import ActivityKind
from m365sync.crm.target import Participant
from m365sync.sync.features import SyncFeature
from support.calendars import (
    at,
    crm_events,
    daily_series,
    gtime,
    invitations,
    outlook_event,
    outlook_events,
)
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"


@pytest.fixture
def world(db_world: SyncWorld) -> SyncWorld:
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_world


ALEX = "alex@contoso.com"
CAL = SyncFeature.CALENDAR


def test_a_meeting_in_two_calendars_is_one_crm_event_with_matched_attendees(
    world: SyncWorld,
) -> None:
    fabrikam = world.add_account("Fabrikam", ["fabrikam.com"])
    contact = world.add_contact("kim@fabrikam.com", fabrikam)
    outlook_event(
        world,
        ADELE,
        subject="Quarterly review",
        start=gtime(at(2)),
        end=gtime(at(2, 16)),
        attendees=[
            {"emailAddress": {"address": ALEX}},
            {"emailAddress": {"address": "kim@fabrikam.com"}},
        ],
    )
    assert world.sync(ADELE, CAL).outcome == "ok"
    assert world.sync(ALEX, CAL).outcome == "ok"

    (event,) = crm_events(world)
    assert event.subject == "Quarterly review"
    assert event.starts_at == at(2)
    with world.crm() as crm:
        assert {m.member_id for m in crm.activity_members(event.id)} == {
            world.members[ADELE],
            world.members[ALEX],
        }
        assert [pid for _, pid in crm.activity_people(event.id)] == [contact]
        assert crm.activity_accounts(event.id) == [fabrikam]


def test_crm_events_go_to_outlook_without_inviting_anyone_and_are_not_echoed(
    world: SyncWorld,
) -> None:
    world.control.delete("/_sim/invitations")
    with world.crm() as crm:
        crm.crm_save_event(
            owner_member_id=world.members[ADELE],
            subject="Demo for Kim",
            starts_at=at(3),
            ends_at=at(3, 16),
            attendees=[Participant("kim@fabrikam.com", "Kim", "attendee")],
        )
    assert world.sync(ADELE, CAL).outcome == "ok"

    (created,) = outlook_events(world, ADELE)
    assert created["subject"] == "Demo for Kim" and created["attendees"] == []
    assert invitations(world) == []

    world.clear_requests()
    assert world.sync(ADELE, CAL).outcome == "ok"
    writes = [r for r in world.requests() if r["method"] != "GET" and r["path"].startswith("/v1.0")]
    assert writes == []
    (event,) = crm_events(world)
    assert event.external_id == created["iCalUId"]

    with world.crm() as crm:
        crm.crm_save_event(
            activity_id=event.id,
            owner_member_id=world.members[ADELE],
            subject="Demo (invited)",
            starts_at=at(3),
            ends_at=at(3, 16),
            send_invitations=True,
            attendees=[Participant("kim@fabrikam.com", "Kim", "attendee")],
        )
    assert world.sync(ADELE, CAL).outcome == "ok"
    sent = invitations(world)
    assert [(i["kind"], i["to"]) for i in sent] == [("request", ["kim@fabrikam.com"])]


def test_a_meeting_with_attendees_is_left_alone_unless_the_crm_user_asked_to_notify_them(
    world: SyncWorld,
) -> None:
    outlook_event(
        world,
        ADELE,
        subject="Pricing call",
        start=gtime(at(3)),
        end=gtime(at(3, 16)),
        attendees=[{"emailAddress": {"address": "kim@fabrikam.com", "name": "Kim"}}],
    )
    assert world.sync(ADELE, CAL).outcome == "ok"
    (event,) = crm_events(world)
    world.control.delete("/_sim/invitations")

    with world.crm() as crm:
        crm.crm_save_event(
            activity_id=event.id,
            owner_member_id=world.members[ADELE],
            subject="Pricing call (moved)",
            starts_at=at(4),
            ends_at=at(4, 16),
            attendees=[Participant("kim@fabrikam.com", "Kim", "attendee")],
        )
    world.clear_requests()
    assert world.sync(ADELE, CAL).outcome == "ok"
    with world.crm() as crm:
        crm.crm_delete(event.id)
    assert world.sync(ADELE, CAL).outcome == "ok"

    writes = [r for r in world.requests() if r["method"] != "GET" and r["path"].startswith("/v1.0")]
    assert writes == []
    assert [(e["subject"], e["attendees"] != []) for e in outlook_events(world, ADELE)] == [
        ("Pricing call", True)
    ]
    assert invitations(world) == []


def test_newest_modification_wins_and_the_loser_is_overwritten(world: SyncWorld) -> None:
    made = outlook_event(world, ADELE, subject="Original", start=gtime(at(4)), end=gtime(at(4, 16)))
    assert world.sync(ADELE, CAL).outcome == "ok"
    (event,) = crm_events(world)

    world.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{made['id']}", json={"subject": "Outlook edit"}
    ).raise_for_status()
    with world.crm() as crm:  # later than the Outlook edit
        crm.crm_save_event(
            activity_id=event.id,
            owner_member_id=world.members[ADELE],
            subject="CRM edit",
            starts_at=at(4),
            ends_at=at(4, 16),
        )
    assert world.sync(ADELE, CAL).outcome == "ok"
    assert [e["subject"] for e in outlook_events(world, ADELE)] == ["CRM edit"]
    assert [e.subject for e in crm_events(world)] == ["CRM edit"]

    with world.crm() as crm:
        crm.crm_save_event(
            activity_id=event.id,
            owner_member_id=world.members[ADELE],
            subject="CRM again",
            starts_at=at(4),
            ends_at=at(4, 16),
        )
    world.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{made['id']}", json={"subject": "Outlook newest"}
    ).raise_for_status()
    assert world.sync(ADELE, CAL).outcome == "ok"
    assert [e["subject"] for e in outlook_events(world, ADELE)] == ["Outlook newest"]
    assert [e.subject for e in crm_events(world)] == ["Outlook newest"]


def test_deletions_propagate_both_ways(world: SyncWorld) -> None:
    one = outlook_event(
        world, ADELE, subject="Delete in Outlook", start=gtime(at(5)), end=gtime(at(5, 16))
    )
    outlook_event(world, ADELE, subject="Delete in CRM", start=gtime(at(6)), end=gtime(at(6, 16)))
    assert world.sync(ADELE, CAL).outcome == "ok"
    assert len(crm_events(world)) == 2

    world.control.delete(f"/_sim/mailboxes/{ADELE}/events/{one['id']}").raise_for_status()
    with world.crm() as crm:
        doomed = next(e for e in crm.activities(ActivityKind.EVENT) if e.subject == "Delete in CRM")
        crm.crm_delete(doomed.id)
    assert world.sync(ADELE, CAL).outcome == "ok"

    assert crm_events(world) == []
    assert outlook_events(world, ADELE) == []


def test_recurring_series_occurrences_follow_outlook_without_duplicates(world: SyncWorld) -> None:
    start = at(1, 9)
    series = daily_series(world, ADELE, "Standup", start, 5)
    assert world.sync(ADELE, CAL).outcome == "ok"
    events = crm_events(world)
    assert len(events) == 5
    assert {e.series_key for e in events} == {series["iCalUId"]}

    world.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{series['id']}", json={"subject": "Daily standup"}
    ).raise_for_status()
    assert world.sync(ADELE, CAL).outcome == "ok"
    assert sorted(e.subject for e in crm_events(world)) == ["Daily standup"] * 5

    graph = world.graph()
    import asyncio

    async def instances() -> list[dict[str, Any]]:
        try:
            data = await graph.get_json(
                f"/users/{ADELE}/events/{series['id']}/instances",
                params={
                    "startDateTime": (start - timedelta(days=1)).isoformat(),
                    "endDateTime": (start + timedelta(days=9)).isoformat(),
                },
                prefer=['outlook.timezone="UTC"'],
            )
            return list(data["value"])
        finally:
            await graph.aclose()

    occurrences = asyncio.run(instances())
    second, third = occurrences[1], occurrences[2]
    moved_start = start + timedelta(days=1, hours=2)
    asyncio.run(
        _patch(
            world,
            f"/users/{ADELE}/events/{second['id']}",
            {"start": gtime(moved_start), "end": gtime(moved_start + timedelta(minutes=15))},
        )
    )
    asyncio.run(_delete(world, f"/users/{ADELE}/events/{third['id']}"))
    assert world.sync(ADELE, CAL).outcome == "ok"

    events = crm_events(world)
    assert len(events) == 4
    assert moved_start in {e.starts_at for e in events}


async def _patch(world: SyncWorld, path: str, body: dict[str, Any]) -> None:
    graph = world.graph()
    try:
        await graph.patch_json(path, body)
    finally:
        await graph.aclose()


async def _delete(world: SyncWorld, path: str) -> None:
    graph = world.graph()
    try:
        await graph.delete(path)
    finally:
        await graph.aclose()
