"""Calendar Sync and Task Sync both ways with Salesforce: Events and Tasks created, edited
and deleted in sfsim by a rep (through the unmodified simple-salesforce, signed in as the
rep's own Salesforce user) reach the rep's Outlook calendar and To Do list in m365sim;
m365sync's own writes never bounce back; the newest change wins; nobody is invited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs

import pytest
from simple_salesforce import Salesforce

from m365sync.crm.salesforce_changes import (
    OVERLAP,
    pull_salesforce_changes,
    pull_salesforce_changes_everywhere,
)
from m365sync.crm.salesforce_repository import SalesforceRepository
from m365sync.crm.salesforce_schemas import PullResult
from m365sync.salesforce.errors import TooManyIds
from m365sync.sync.features import SyncFeature
from support.salesforce_target_world import ADELE, MEMBER_PASSWORD, PAT, SalesforceTarget
from support.sf_clients import user_client

CAL = SyncFeature.CALENDAR
TASKS = SyncFeature.TASKS
ADELE_USER = "adele@acme.example"


def connected(target: SalesforceTarget) -> None:
    report = target.connect()
    assert report.ok, report.failures()
    target.mirror()


def as_rep(target: SalesforceTarget, username: str = ADELE_USER) -> Salesforce:
    """simple-salesforce, unmodified, signed in as the rep's own Salesforce user."""
    return user_client(target.sf, username, MEMBER_PASSWORD)


def later(target: SalesforceTarget, seconds: int) -> datetime:
    """Both clocks moved on together (Salesforce's and Microsoft's), as real time would."""
    target.sync.control.post("/_sim/clock", json={"advanceSeconds": seconds}).raise_for_status()
    moved = target.control("POST", "clock", json={"advanceSeconds": seconds})
    return datetime.fromisoformat(moved["now"])


def pull(target: SalesforceTarget) -> PullResult:
    """A poll a little later (Salesforce's change polling counts whole minutes)."""
    return pull_salesforce_changes(
        target.database,
        target.organization_id,
        settings=target.settings,
        box=target.box,
        now=later(target, 90),
    )


def sync(target: SalesforceTarget, feature: SyncFeature, mailbox: str = ADELE) -> None:
    result = target.sync.sync(mailbox, feature)
    assert result.outcome == "ok", (result.error, result.fix)


def outlook(target: SalesforceTarget, mailbox: str = ADELE) -> list[dict[str, Any]]:
    return list(target.sync.control.get(f"/_sim/mailboxes/{mailbox}/events").json()["value"])


def invitations(target: SalesforceTarget) -> list[dict[str, Any]]:
    return list(target.sync.control.get("/_sim/invitations").json()["value"])


def slot(days: int, hour: int = 10) -> datetime:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=days, hours=hour)


def sf_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def graph_start(event: dict[str, Any]) -> datetime:
    start = event["start"]
    return datetime.fromisoformat(start["dateTime"][:19]).replace(tzinfo=UTC)


def test_an_event_made_edited_and_deleted_in_salesforce_reaches_outlook_uninvited(
    target: SalesforceTarget,
) -> None:
    connected(target)
    target.sync.control.delete("/_sim/invitations")
    rep = as_rep(target)
    made = rep.Event.create(
        {
            "Subject": "Lunch with Pat",
            "StartDateTime": sf_time(slot(2, 12)),
            "EndDateTime": sf_time(slot(2, 13)),
            "Location": "Cafe",
            "WhoId": target.record_id("Contact", Email=PAT),
        }
    )

    assert pull(target).created == {"Event": 1}
    sync(target, CAL)

    (event,) = outlook(target)
    assert (event["subject"], event["location"]["displayName"]) == ("Lunch with Pat", "Cafe")
    assert graph_start(event) == slot(2, 12)
    assert event["attendees"] == []

    rep.Event.update(
        made["id"], {"StartDateTime": sf_time(slot(3, 9)), "EndDateTime": sf_time(slot(3, 10))}
    )
    assert pull(target).changed == {"Event": 1}
    sync(target, CAL)
    (moved,) = outlook(target)
    assert moved["id"] == event["id"]
    assert graph_start(moved) == slot(3, 9)

    # Nothing bounces: Salesforce already holds it, Outlook's copy is ours.
    assert target.drain().written == 0
    assert pull(target).changed == {}

    rep.Event.delete(made["id"])
    assert pull(target).deleted == {"Event": 1}
    sync(target, CAL)
    assert outlook(target) == []
    assert invitations(target) == []
    assert target.records("Event") == []


def test_m365syncs_own_writes_are_not_pulled_back(target: SalesforceTarget) -> None:
    connected(target)
    target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": "Quarterly review",
            "start": {"dateTime": slot(2).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": slot(2, 11).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": PAT}}],
        },
    ).raise_for_status()
    sync(target, CAL)
    assert target.drain().synced == 1

    result = pull(target)

    assert (result.created, result.changed, result.deleted) == ({}, {}, {})
    assert result.echoes == 1
    target.sync.clear_requests()
    sync(target, CAL)
    graph_writes = [
        r for r in target.sync.requests() if r["method"] != "GET" and r["path"].startswith("/v1.0")
    ]
    assert graph_writes == []


def pipeline_review(
    target: SalesforceTarget,
) -> tuple[Salesforce, dict[str, Any], dict[str, Any]]:
    """A meeting Adele made in Salesforce, now in her calendar: her Salesforce client, the
    Event's id answer and the Outlook event."""
    connected(target)
    rep = as_rep(target)
    made = rep.Event.create(
        {
            "Subject": "Pipeline review",
            "StartDateTime": sf_time(slot(4)),
            "EndDateTime": sf_time(slot(4, 11)),
        }
    )
    pull(target)
    sync(target, CAL)
    (event,) = outlook(target)
    return rep, made, event


def test_a_salesforce_edit_newer_than_outlooks_wins(target: SalesforceTarget) -> None:
    rep, made, event = pipeline_review(target)

    target.sync.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{event['id']}", json={"subject": "Outlook's title"}
    ).raise_for_status()
    later(target, 60)  # Salesforce's edit is the later one
    rep.Event.update(made["id"], {"Subject": "Salesforce's title"})
    pull(target)
    sync(target, CAL)
    target.drain()

    (event,) = outlook(target)
    assert event["subject"] == "Salesforce's title"
    assert rep.Event.get(made["id"])["Subject"] == "Salesforce's title"


def test_an_outlook_edit_newer_than_salesforces_wins(target: SalesforceTarget) -> None:
    rep, made, event = pipeline_review(target)

    rep.Event.update(made["id"], {"Subject": "Salesforce's title"})
    later(target, 60)  # Outlook's edit is the later one
    target.sync.control.patch(
        f"/_sim/mailboxes/{ADELE}/events/{event['id']}", json={"subject": "Outlook's title"}
    ).raise_for_status()
    sync(target, CAL)
    result = pull(target)
    assert result.kept_local == 1
    target.drain()
    sync(target, CAL)

    (event,) = outlook(target)
    assert event["subject"] == "Outlook's title"
    assert rep.Event.get(made["id"])["Subject"] == "Outlook's title"
    assert len(target.records("Event")) == 1


def test_a_meeting_with_attendees_edited_in_salesforce_sends_nothing(
    target: SalesforceTarget,
) -> None:
    connected(target)
    made = target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": "Demo",
            "start": {"dateTime": slot(5).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": slot(5, 11).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": PAT}}],
        },
    )
    made.raise_for_status()
    sync(target, CAL)
    target.drain()
    target.sync.control.delete("/_sim/invitations")
    (record,) = target.records("Event")

    as_rep(target).Event.update(record["Id"], {"Subject": "Demo (agenda changed)"})
    assert pull(target).changed == {"Event": 1}
    sync(target, CAL)

    # Changing the organizer's meeting would send Pat an update: Outlook keeps its copy.
    (event,) = outlook(target)
    assert event["subject"] == "Demo"
    assert invitations(target) == []


def test_a_task_made_completed_and_deleted_in_salesforce_reaches_to_do(
    target: SalesforceTarget,
) -> None:
    connected(target)
    rep = as_rep(target)
    made = rep.Task.create(
        {
            "Subject": "Send Pat the quote",
            "ActivityDate": slot(3).date().isoformat(),
            "Priority": "High",
            "Status": "Not Started",
            "Description": "Prices for 2027",
            "TaskSubtype": "Task",
        }
    )

    assert pull(target).created == {"Task": 1}
    sync(target, TASKS)
    (task,) = target.sync.todo_tasks(ADELE)
    assert (task["title"], task["importance"], task["status"]) == (
        "Send Pat the quote",
        "high",
        "notStarted",
    )
    assert task["body"]["content"] == "Prices for 2027"
    assert task["dueDateTime"]["dateTime"].startswith(slot(3).date().isoformat())

    rep.Task.update(made["id"], {"Status": "Completed"})
    assert pull(target).changed == {"Task": 1}
    sync(target, TASKS)
    (task,) = target.sync.todo_tasks(ADELE)
    assert task["status"] == "completed"
    assert target.drain().written == 0

    rep.Task.delete(made["id"])
    assert pull(target).deleted == {"Task": 1}
    sync(target, TASKS)
    assert target.sync.todo_tasks(ADELE) == []


def test_a_to_do_task_written_to_salesforce_follows_a_salesforce_edit(
    target: SalesforceTarget,
) -> None:
    connected(target)
    target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/todo/lists/default/tasks",
        json={"title": "Call Pat back", "importance": "normal"},
    ).raise_for_status()
    sync(target, TASKS)
    assert target.drain().synced == 1
    (record,) = target.records("Task")
    assert pull(target).echoes == 1

    as_rep(target).Task.update(record["Id"], {"Priority": "Low", "Subject": "Call Pat on Monday"})
    assert pull(target).changed == {"Task": 1}
    sync(target, TASKS)

    (task,) = target.sync.todo_tasks(ADELE)
    assert (task["title"], task["importance"]) == ("Call Pat on Monday", "low")
    assert target.drain().written == 0


def test_tasks_of_other_users_and_logged_emails_stay_in_salesforce(
    target: SalesforceTarget,
) -> None:
    connected(target)
    as_rep(target, "alex@acme.example").Task.create(
        {"Subject": "Alex's own", "Status": "Not Started", "TaskSubtype": "Task"}
    )
    as_rep(target).Task.create(
        {"Subject": "Call logged", "Status": "Completed", "TaskSubtype": "Call"}
    )

    result = pull(target)

    assert result.created == {"Task": 1}  # Alex's, in Alex's list (Alex is a member)
    sync(target, TASKS)
    assert target.sync.todo_tasks(ADELE) == []


def test_a_salesforce_series_master_is_not_a_meeting_of_its_own(
    target: SalesforceTarget,
) -> None:
    connected(target)
    rep = as_rep(target)
    rep.Event.create(
        {
            "Subject": "Weekly sync (series)",
            "StartDateTime": sf_time(slot(1, 9)),
            "EndDateTime": sf_time(slot(1, 10)),
            "IsRecurrence": True,
        }
    )
    rep.Event.create(
        {
            "Subject": "Weekly sync",
            "StartDateTime": sf_time(slot(8, 9)),
            "EndDateTime": sf_time(slot(8, 10)),
        }
    )

    assert pull(target).created == {"Event": 1}
    sync(target, CAL)
    (event,) = outlook(target)
    assert event["subject"] == "Weekly sync"


def test_an_all_day_event_from_salesforce_is_all_day_in_outlook(
    target: SalesforceTarget,
) -> None:
    connected(target)
    as_rep(target).Event.create(
        {
            "Subject": "Trade fair",
            "IsAllDayEvent": True,
            "ActivityDate": slot(6).date().isoformat(),
            "DurationInMinutes": 2 * 1440,
        }
    )

    pull(target)
    sync(target, CAL)

    (event,) = outlook(target)
    assert event["isAllDay"] is True
    assert event["start"]["dateTime"].startswith(slot(6).date().isoformat())
    assert event["end"]["dateTime"].startswith(slot(8).date().isoformat())


def test_each_poll_starts_before_the_last_one_ended_and_every_org_is_polled(
    target: SalesforceTarget,
) -> None:
    connected(target)
    pull(target)
    with target.database.session() as session:
        cursor = SalesforceRepository(session, target.organization_id).cursor("changes:Event")
        assert cursor is not None
        covered = cursor.updated_until
    target.forget_requests()
    later(target, 90)

    results = pull_salesforce_changes_everywhere(
        target.database, settings=target.settings, box=target.box
    )

    assert list(results) == [target.organization_id]
    assert results[target.organization_id].error == ""
    polls = [r for r in target.api_requests() if "/sobjects/Event/updated/" in r["path"]]
    (poll,) = polls
    start = parse_qs(poll["query"])["start"][0].replace(" ", "+")
    assert datetime.fromisoformat(start) == covered - OVERLAP


def limit_ids(target: SalesforceTarget, limit: int) -> None:
    """Salesforce's 600,000 ids a change-polling window, lowered."""
    target.control("PATCH", "config", json={"replication_id_limit": limit})


def change_windows(target: SalesforceTarget, path: str) -> list[tuple[int, datetime, datetime]]:
    """The change-polling windows m365sync asked for: (status, start, end) in order."""
    windows = []
    for entry in target.api_requests():
        if path in entry["path"]:
            query = parse_qs(entry["query"])
            start, end = (
                datetime.fromisoformat(query[name][0].replace(" ", "+"))
                for name in ("start", "end")
            )
            windows.append((int(entry["status"]), start, end))
    return windows


def assert_narrowed_and_consecutive(
    windows: list[tuple[int, datetime, datetime]], *, started: datetime
) -> None:
    """Refused windows were asked again shorter, and the accepted ones follow each other
    without a gap up to the poll's time."""
    assert any(status == 400 for status, _, _ in windows)
    accepted = [(start, end) for status, start, end in windows if status == 200]
    assert len(accepted) >= 2
    for (_, end), (next_start, _) in pairwise(accepted):
        assert next_start == end
    assert accepted[-1][1] == started.replace(microsecond=0)
    assert all(end.second == 0 for _, end in accepted[:-1])  # whole minutes


def pull_at(target: SalesforceTarget) -> tuple[PullResult, datetime]:
    """A poll a little later, and when it ran."""
    now = later(target, 90)
    result = pull_salesforce_changes(
        target.database,
        target.organization_id,
        settings=target.settings,
        box=target.box,
        now=now,
    )
    return result, now


def titles(target: SalesforceTarget) -> list[str]:
    return sorted(task["title"] for task in target.sync.todo_tasks(ADELE))


def test_more_changes_than_salesforce_lists_at_once_are_pulled_window_by_window(
    target: SalesforceTarget,
) -> None:
    connected(target)
    pull(target)
    limit_ids(target, 5)
    rep = as_rep(target)
    names = [f"Call back {n:02}" for n in range(12)]
    made: list[str] = []
    for pair in range(6):  # two a minute: each minute fits, the whole window does not
        for name in names[2 * pair : 2 * pair + 2]:
            made.append(
                rep.Task.create({"Subject": name, "Status": "Not Started", "TaskSubtype": "Task"})[
                    "id"
                ]
            )
        later(target, 60)
    target.forget_requests()

    first, started = pull_at(target)

    assert first.created == {"Task": 12}
    assert_narrowed_and_consecutive(
        change_windows(target, "/sobjects/Task/updated/"), started=started
    )
    sync(target, TASKS)
    assert titles(target) == names  # each once
    assert pull(target).created == {}  # the cursor went on past them

    for pair in range(6):
        for task in made[2 * pair : 2 * pair + 2]:
            rep.Task.update(task, {"Status": "Completed"})
        later(target, 60)
    assert pull(target).changed == {"Task": 12}
    sync(target, TASKS)
    assert {task["status"] for task in target.sync.todo_tasks(ADELE)} == {"completed"}

    for pair in range(6):
        for task in made[2 * pair : 2 * pair + 2]:
            rep.Task.delete(task)
        later(target, 60)
    target.forget_requests()
    gone, started = pull_at(target)
    assert gone.deleted == {"Task": 12}
    assert_narrowed_and_consecutive(
        change_windows(target, "/sobjects/Task/deleted/"), started=started
    )
    sync(target, TASKS)
    assert titles(target) == []


def test_more_changes_in_one_minute_than_salesforce_lists_stop_the_poll_with_advice(
    target: SalesforceTarget,
) -> None:
    connected(target)
    pull(target)
    limit_ids(target, 1)
    rep = as_rep(target)
    for name in ("Mass one", "Mass two"):
        rep.Task.create({"Subject": name, "Status": "Not Started", "TaskSubtype": "Task"})

    with pytest.raises(TooManyIds) as refused:
        pull(target)

    assert "within one minute" in str(refused.value)
    assert refused.value.fix is not None and "mass change" in refused.value.fix
