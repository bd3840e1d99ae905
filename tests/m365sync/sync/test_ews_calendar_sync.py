"""Calendar Sync over EWS (an on-premises Exchange Server, through an Exchange service
account) against m365sim's Exchange Server, read and written by the product's exchangelib
client: first sync, incremental, deletions, one CRM event per meeting across mailboxes,
and CRM-side writes that send no invitation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from m365sync.crm.target import Participant
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncCursor
from support.calendars import (
    at,
    crm_events,
    daily_series,
    gtime,
    invitations,
    outlook_event,
    outlook_events,
)
from support.crashes import crash_recording_once
from support.ews_world import exchange_only
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"
ALEX = "alex@contoso.com"
CAL = SyncFeature.CALENDAR


@pytest.fixture
def world(db_world: SyncWorld) -> Iterator[SyncWorld]:
    """Every test here runs on SQLite and on PostgreSQL."""
    yield exchange_only(db_world)
    close_exchange_connections()


def ews_requests(world: SyncWorld) -> list[dict[str, Any]]:
    return [r for r in world.requests(path_contains="/EWS/") if r["status"] == 200]


def synced(world: SyncWorld, mailbox: str) -> None:
    result = world.sync(mailbox, CAL)
    assert result.outcome == "ok", (result.error, result.fix)


def test_first_sync_incremental_and_deletions(world: SyncWorld) -> None:
    fabrikam = world.add_account("Fabrikam", ["fabrikam.com"])
    contact = world.add_contact("kim@fabrikam.com", fabrikam, "Kim Akers")
    review = outlook_event(
        world,
        ADELE,
        subject="Quarterly review",
        start=gtime(at(2)),
        end=gtime(at(2, 16)),
        attendees=[{"emailAddress": {"address": "kim@fabrikam.com", "name": "Kim Akers"}}],
    )
    outlook_event(world, ADELE, subject="Dentist", start=gtime(at(3)), end=gtime(at(3, 16)))
    world.clear_requests()

    synced(world, ADELE)
    assert ews_requests(world), "the calendar was read over EWS"

    assert not world.requests(path_contains="/v1.0/"), "and never through Graph"
    events = {e.subject: e for e in crm_events(world)}
    assert sorted(events) == ["Dentist", "Quarterly review"]
    assert events["Quarterly review"].starts_at == at(2)
    assert events["Quarterly review"].external_id == review["iCalUId"]
    with world.crm() as crm:
        assert [pid for _, pid in crm.activity_people(events["Quarterly review"].id)] == [contact]
        assert crm.activity_accounts(events["Quarterly review"].id) == [fabrikam]
    with world.database.session() as session:
        (cursor,) = [c for c in session.query(SyncCursor).all() if c.key == "calendar"]
        assert cursor.delta_link and not cursor.delta_link.startswith("http")  # a SyncState

    # Nothing changed: one SyncFolderItems, no view, nothing written.
    world.clear_requests()
    synced(world, ADELE)
    assert len(ews_requests(world)) == 1, ews_requests(world)

    world.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{review['id']}",
        json={
            "subject": "Quarterly review (moved)",
            "start": gtime(at(4)),
            "end": gtime(at(4, 16)),
        },
    ).raise_for_status()
    synced(world, ADELE)
    events = {e.subject: e for e in crm_events(world)}
    assert sorted(events) == ["Dentist", "Quarterly review (moved)"]
    assert events["Quarterly review (moved)"].starts_at == at(4)

    world.control.delete(f"/_sim/mailboxes/{ADELE}/events/{review['id']}").raise_for_status()
    synced(world, ADELE)
    assert [e.subject for e in crm_events(world)] == ["Dentist"]


def test_a_meeting_in_two_calendars_is_one_crm_event(world: SyncWorld) -> None:
    outlook_event(
        world,
        ADELE,
        subject="Planning",
        start=gtime(at(2)),
        end=gtime(at(2, 16)),
        attendees=[{"emailAddress": {"address": ALEX}}],
    )
    synced(world, ADELE)
    synced(world, ALEX)
    (event,) = crm_events(world)
    with world.crm() as crm:
        assert {m.member_id for m in crm.activity_members(event.id)} == {
            world.members[ADELE],
            world.members[ALEX],
        }


def test_crm_events_go_to_exchange_without_any_invitation(world: SyncWorld) -> None:
    world.control.delete("/_sim/invitations")
    with world.crm() as crm:
        crm.crm_save_event(
            owner_member_id=world.members[ADELE],
            subject="Demo for Kim",
            starts_at=at(3),
            ends_at=at(3, 16),
            attendees=[Participant("kim@fabrikam.com", "Kim", "attendee")],
        )
    synced(world, ADELE)
    (created,) = outlook_events(world, ADELE)
    assert created["subject"] == "Demo for Kim" and created["attendees"] == []
    (event,) = crm_events(world)
    assert event.external_id == created["iCalUId"]

    # Not echoed: the next run reads our create back (SyncFolderItems reports it), knows it
    # by its ChangeKey and writes nothing; the run after that is one request.
    echo = world.sync(ADELE, CAL)
    assert echo.outcome == "ok" and echo.progress.pushed == 0 and echo.progress.logged == 0
    assert len(crm_events(world)) == 1
    world.clear_requests()
    synced(world, ADELE)
    assert len(ews_requests(world)) == 1

    with world.crm() as crm:
        crm.crm_save_event(
            activity_id=event.id,
            owner_member_id=world.members[ADELE],
            subject="Demo for Kim (moved)",
            starts_at=at(5),
            ends_at=at(5, 16),
        )
    synced(world, ADELE)
    (moved,) = outlook_events(world, ADELE)
    assert moved["subject"] == "Demo for Kim (moved)"
    assert moved["start"]["dateTime"].startswith(at(5).strftime("%Y-%m-%dT%H:%M:%S"))

    with world.crm() as crm:
        crm.crm_delete(event.id)
    synced(world, ADELE)
    assert outlook_events(world, ADELE) == []
    assert invitations(world) == []  # ZERO meeting messages for the whole story


def test_a_recurring_series_is_one_event_per_occurrence(world: SyncWorld) -> None:
    start = at(1, 9)
    series = daily_series(world, ADELE, "Standup", start, 5)
    synced(world, ADELE)
    events = crm_events(world)
    assert sorted(e.starts_at for e in events) == [start + timedelta(days=d) for d in range(5)]
    assert {e.series_key for e in events} == {series["iCalUId"]}
    assert len({e.external_id for e in events}) == 5

    world.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{series['id']}", json={"subject": "Daily standup"}
    ).raise_for_status()
    synced(world, ADELE)
    assert sorted(e.subject for e in crm_events(world)) == ["Daily standup"] * 5


def test_an_expired_sync_state_resyncs_the_calendar(world: SyncWorld) -> None:
    outlook_event(world, ADELE, subject="Dentist", start=gtime(at(3)), end=gtime(at(3, 16)))
    synced(world, ADELE)
    world.control.post(
        "/_sim/faults",
        json={"kind": "expiredCursor", "operation": "SyncFolderItems", "count": 1},
    ).raise_for_status()
    outlook_event(world, ADELE, subject="Review", start=gtime(at(4)), end=gtime(at(4, 16)))
    synced(world, ADELE)
    assert sorted(e.subject for e in crm_events(world)) == ["Dentist", "Review"]


def test_a_crash_after_exchange_created_the_item_leaves_one_copy(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EWS has no transactionId: the process dies between Exchange's answer to the
    CreateItem and the local record of it; the retry finds the stamped item instead of
    creating a second one."""
    with world.crm() as crm:
        crm.crm_save_event(
            owner_member_id=world.members[ADELE],
            subject="Demo for Kim",
            starts_at=at(3),
            ends_at=at(3, 16),
        )
    died = crash_recording_once(monkeypatch)
    assert world.sync(ADELE, CAL).outcome == "failed"
    assert died == [True]
    assert [e["subject"] for e in outlook_events(world, ADELE)] == ["Demo for Kim"]

    synced(world, ADELE)
    synced(world, ADELE)
    (created,) = outlook_events(world, ADELE)
    (event,) = crm_events(world)
    assert event.external_id == created["iCalUId"]
