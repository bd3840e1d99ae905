"""Salesforce → Outlook and To Do: Events and Tasks changed in Salesforce, pulled into the
local store, from where Calendar Sync and Task Sync write them to the member's mailbox.

Calendar Sync and Task Sync are two-way with Salesforce without a second sync engine: a
change read here becomes a CRM-side edit of the local store (``EmbeddedCrm.crm_save_event``,
``crm_save_task``, ``crm_delete``), exactly like an edit made in the embedded CRM, so the
existing push (``sync.push``) writes it to Outlook or To Do with its guarantees: after the
local commit, no attendees (so no invitation) unless the user asked, a meeting that has
attendees in Outlook left as Outlook has it, echoes recognised by ``changeKey``.

What is pulled, per organization, by polling ``sobjects/{Event,Task}/updated/`` and
``/deleted/`` (never a query per member):

- Events and Tasks (``TaskSubtype = Task``) owned by a member's Salesforce user, and any
  record m365sync wrote (its ledger row names it), created, edited or deleted there;
- nothing m365sync wrote itself: a change whose ``LastModifiedById`` is the user m365sync
  signs in as is its own echo, and a change that leaves every synced field as the local
  store holds it is nothing new (so an echo never bounces back to Outlook, and a pulled
  change is not written back to Salesforce either: it is recorded as what Salesforce holds).

Conflicts: the newest change wins. A Salesforce change older than a local change not yet
written to Salesforce loses (the writer then overwrites it); a newer one wins and keeps its
own time (``LastModifiedDate``), so Calendar Sync compares it with Outlook's
``lastModifiedDateTime`` the same way.

Recurring series: m365sync writes each occurrence of an Outlook series as its own Event, so a
Salesforce edit of one of those Events changes that one occurrence in Outlook (Outlook makes
it an exception of the series), and deleting one deletes that occurrence. A series created
in Salesforce (``IsRecurrence``) is its master record plus one Event per occurrence: the
occurrences reach Outlook as single meetings, the master is skipped (it would double the
first occurrence).

The cursor per object (``salesforce_mirror_cursors`` rows ``changes:Event``,
``changes:Task``) is Salesforce's ``latestDateCovered``; each poll starts ``OVERLAP`` before
it (a record saved in a long transaction can carry a ``SystemModstamp`` older than its
commit), and re-reading a change already applied changes nothing. ``updated`` answers for
the last 30 days and ``deleted`` for 15 (Salesforce ignores seconds and refuses older
starts): a cursor older than that restarts at the oldest start Salesforce accepts, and what
changed before it is not pulled. A window holding more than 600,000 ids (after downtime, or a
mass update) is narrowed by the client; the poll then reads the rest of its window, narrowed
window after narrowed window, within the same poll, applying each and saving the cursor
after it (no overlap between them: they are consecutive and in the past). The changed and
deleted cursors move independently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import requests

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.models import (
    ActivityKind,
    CrmActivity,
    SalesforceActivityRecord,
    WriteState,
)
from m365sync.crm.salesforce_access import open_client, remember, working_secrets
from m365sync.crm.salesforce_repository import CHANGES_CURSOR, SalesforceRepository
from m365sync.crm.salesforce_schemas import PullResult
from m365sync.crm.salesforce_writer import TEXT_MAX, TODO_PRIORITY, TODO_STATUS
from m365sync.crm.target import Participant
from m365sync.crypto import SecretBox
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.salesforce import SalesforceClient
from m365sync.salesforce.errors import LimitExceeded
from m365sync.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "OVERLAP",
    "POLL_SECONDS",
    "pull_salesforce_changes",
    "pull_salesforce_changes_everywhere",
]

OVERLAP = timedelta(minutes=5)
"""Each poll re-reads this much of the window before its cursor."""
UPDATED_WINDOW = timedelta(days=29)
DELETED_WINDOW = timedelta(days=14)
POLL_SECONDS = 120.0
"""How often the scheduler polls each org: Salesforce counts whole minutes, and a poll costs
four requests when nothing changed (about 2,900 a day per org)."""
FIRST_POLL_BACK = timedelta(hours=1)
PAGE = 200

EVENT_FIELDS = (
    "Id",
    "OwnerId",
    "Subject",
    "StartDateTime",
    "EndDateTime",
    "IsAllDayEvent",
    "ActivityDate",
    "DurationInMinutes",
    "Location",
    "Description",
    "LastModifiedById",
    "LastModifiedDate",
)
TASK_FIELDS = (
    "Id",
    "OwnerId",
    "Subject",
    "ActivityDate",
    "Status",
    "Priority",
    "Description",
    "TaskSubtype",
    "LastModifiedById",
    "LastModifiedDate",
)
STATUS_FROM_SALESFORCE = {label: status for status, label in TODO_STATUS.items()}
PRIORITY_FROM_SALESFORCE = {label: importance for importance, label in TODO_PRIORITY.items()}
KIND = {"Event": ActivityKind.EVENT, "Task": ActivityKind.TASK}


def _cursor_key(sobject: str) -> str:
    return f"{CHANGES_CURSOR}{sobject}"


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _day(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.combine(date.fromisoformat(str(value)[:10]), time(), tzinfo=UTC)


def _text(salesforce: Any, local: str | None, limit: int) -> str:
    """Salesforce's value, unless it is the local one cut to Salesforce's length (m365sync
    wrote it cut: the whole local text stays)."""
    value = str(salesforce or "")
    if local is not None and value == local[:limit]:
        return local
    return value


@dataclass
class _Context:
    repo: SalesforceRepository
    crm: EmbeddedCrm
    owners: dict[str, str]
    """Salesforce user id → member id."""
    integration_user_id: str | None
    result: PullResult


def _event_values(record: dict[str, Any], local: CrmActivity | None) -> dict[str, Any]:
    if record.get("IsAllDayEvent"):
        starts = _day(record.get("ActivityDate")) or _when(record.get("StartDateTime"))
        minutes = int(record.get("DurationInMinutes") or 1440)
        ends = starts + timedelta(minutes=max(minutes, 1440)) if starts else None
        all_day = True
    else:
        starts, ends = _when(record.get("StartDateTime")), _when(record.get("EndDateTime"))
        all_day = False
    return {
        "subject": _text(record.get("Subject"), local.subject if local else None, 255),
        "starts_at": starts,
        "ends_at": ends,
        "is_all_day": all_day,
        "location": _text(record.get("Location"), local.location if local else None, 255),
        "body": _text(record.get("Description"), local.body if local else None, TEXT_MAX),
    }


def _task_values(record: dict[str, Any], local: CrmActivity | None) -> dict[str, Any]:
    due = _day(record.get("ActivityDate"))
    if local is not None and local.due_at is not None and due is not None:
        same_day = local.due_at.date() == due.date()
        due = local.due_at if same_day else due  # the same day: keep To Do's time zone
    return {
        "title": _text(record.get("Subject"), local.subject if local else None, 255),
        "due_at": due,
        "status": STATUS_FROM_SALESFORCE.get(str(record.get("Status") or ""), "notStarted"),
        "importance": PRIORITY_FROM_SALESFORCE.get(str(record.get("Priority") or ""), "normal"),
        "notes": _text(record.get("Description"), local.body if local else None, TEXT_MAX),
    }


def _same_event(local: CrmActivity, values: dict[str, Any]) -> bool:
    held = {
        "subject": local.subject,
        "starts_at": local.starts_at,
        "ends_at": local.ends_at,
        "is_all_day": bool(local.is_all_day),
        "location": local.location or "",
        "body": local.body or "",
    }
    return held == values


def _same_task(local: CrmActivity, values: dict[str, Any]) -> bool:
    held = {
        "title": local.subject,
        "due_at": local.due_at.date() if local.due_at else None,
        "status": local.status,
        "importance": local.importance,
        "notes": local.body or "",
    }
    return held == {**values, "due_at": values["due_at"].date() if values["due_at"] else None}


def _participants(local: CrmActivity) -> list[Participant]:
    return [
        Participant(p.get("address", ""), p.get("name", ""), p.get("role", "attendee"))
        for p in local.participants or []
    ]


def _save(
    ctx: _Context,
    sobject: str,
    record: dict[str, Any],
    owner_member_id: str,
    local: CrmActivity | None,
    modified_at: datetime,
) -> str:
    if sobject == "Event":
        values = _event_values(record, local)
        if values["starts_at"] is None or values["ends_at"] is None:
            raise ValueError("an Event without a start or an end")
        return ctx.crm.crm_save_event(
            owner_member_id=owner_member_id,
            subject=values["subject"],
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            is_all_day=values["is_all_day"],
            location=values["location"],
            body=values["body"],
            attendees=_participants(local) if local else (),
            send_invitations=bool(local.send_invitations) if local else False,
            activity_id=local.id if local else None,
            modified_at=modified_at,
        )
    return ctx.crm.crm_save_task(
        owner_member_id=owner_member_id,
        **_task_values(record, local),
        activity_id=local.id if local else None,
        modified_at=modified_at,
    )


def _apply_changed(
    ctx: _Context,
    sobject: str,
    records: Sequence[dict[str, Any]],
    ledger: dict[str, SalesforceActivityRecord],
) -> None:
    kind = KIND[sobject]
    activities = ctx.repo.activity_records([row.activity_id for row in ledger.values()])
    for record in records:
        sfid = str(record["Id"])
        if sobject == "Task" and record.get("TaskSubtype") not in (None, "Task"):
            continue  # an email logged as a Task, a call...: not a To Do task
        if record.get("IsRecurrence"):
            continue  # a Salesforce series' master: its occurrences come as their own Events
        if ctx.integration_user_id and record.get("LastModifiedById") == ctx.integration_user_id:
            ctx.result.echoes += 1
            continue  # m365sync's own write
        modified = _when(record.get("LastModifiedDate")) or utcnow()
        row = ledger.get(sfid)
        if row is None:
            member_id = ctx.owners.get(str(record.get("OwnerId") or ""))
            if member_id is None:
                continue  # not a member's, and not written by m365sync
            try:
                activity_id = _save(ctx, sobject, record, member_id, None, modified)
            except ValueError:
                ctx.result.skipped += 1
                continue
            ctx.repo.adopt(activity_id, sobject, sfid)
            ctx.result.created[sobject] = ctx.result.created.get(sobject, 0) + 1
            continue
        local = activities.get(row.activity_id)
        if local is None or local.kind != kind or local.deleted_at is not None:
            continue  # deleted here meanwhile: the writer deletes it in Salesforce
        if sobject == "Event":
            same = _same_event(local, _event_values(record, local))
        else:
            same = _same_task(local, _task_values(record, local))
        if same:
            continue  # nothing new (an echo of what m365sync wrote, or a re-read)
        if row.state == WriteState.PENDING and local.modified_at > modified:
            ctx.result.kept_local += 1
            continue  # the local change is newer: it wins, and the writer sends it
        owner = local.owner_member_id or ctx.owners.get(str(record.get("OwnerId") or ""))
        if owner is None:
            continue
        try:
            _save(ctx, sobject, record, owner, local, modified)
        except ValueError:
            ctx.result.skipped += 1
            continue
        ctx.result.changed[sobject] = ctx.result.changed.get(sobject, 0) + 1


def _apply_deleted(ctx: _Context, sobject: str, deleted: dict[str, datetime]) -> None:
    ledger = ctx.repo.ledger_by_salesforce_id(deleted)
    activities = ctx.repo.activity_records([row.activity_id for row in ledger.values()])
    for sfid, row in ledger.items():
        local = activities.get(row.activity_id)
        if local is None or local.kind != KIND[sobject] or local.deleted_at is not None:
            continue
        when = deleted[sfid]
        if row.state == WriteState.PENDING and local.modified_at > when:
            # Changed here after it was deleted there: the newest change wins, and the
            # writer creates the record again.
            ctx.repo.forget_salesforce_record(row.activity_id, keep_pending=True)
            ctx.result.kept_local += 1
            continue
        ctx.crm.crm_delete(local.id, modified_at=when)
        ctx.repo.forget_salesforce_record(row.activity_id)
        ctx.result.deleted[sobject] = ctx.result.deleted.get(sobject, 0) + 1


def _start(
    position: datetime | None, connected_at: datetime, started: datetime, limit: timedelta
) -> datetime:
    """Where a poll's window starts: ``OVERLAP`` before the cursor; the first poll at the
    connection's creation, at most ``FIRST_POLL_BACK`` ago (a connection made long before
    this feature pulls what changes from now on, not a month of history into calendars);
    never before the oldest start Salesforce accepts."""
    if position is None:
        position = max(connected_at, started - FIRST_POLL_BACK)
    return max(position - OVERLAP, started - limit)


def _poll(
    database: Database,
    client: SalesforceClient,
    organization_id: str,
    sobject: str,
    connected_at: datetime,
    started: datetime,
    result: PullResult,
) -> None:
    """One object's changes and deletions since its cursor, window by window when
    Salesforce narrows the window (more than 600,000 ids): each window's changes are applied
    and the cursor saved before the next window is read, so a poll stopped on the way (the
    API share, an error) goes on from there."""
    with database.session() as session:
        cursor = SalesforceRepository(session, organization_id).cursor(_cursor_key(sobject))
        updated_from = cursor.updated_until if cursor else None
        deleted_from = cursor.deleted_until if cursor else None
    updated_start = _start(updated_from, connected_at, started, UPDATED_WINDOW)
    deleted_start = _start(deleted_from, connected_at, started, DELETED_WINDOW)
    # Until a window is read, its cursor stays where it is (or, on the first poll, where the
    # window starts: the next poll then reads from ``OVERLAP`` before that).
    updated_until = updated_from or updated_start
    deleted_until = deleted_from or deleted_start
    fields = EVENT_FIELDS if sobject == "Event" else TASK_FIELDS
    for window in client.updated_windows(sobject, updated_start, started):
        if window.ids:
            if (
                sobject == "Event"
                and "IsRecurrence" not in fields
                and "IsRecurrence"
                in {f.get("name") for f in client.describe("Event").get("fields", [])}
            ):
                fields = (*fields, "IsRecurrence")
            records = client.find_by(sobject, "Id", window.ids, select=fields)
            for start in range(0, len(records), PAGE):
                page = records[start : start + PAGE]
                with database.session() as session:
                    ctx = _context(session, organization_id, result)
                    ledger = ctx.repo.ledger_by_salesforce_id([str(r["Id"]) for r in page])
                    _apply_changed(ctx, sobject, page, ledger)
        updated_until = max(updated_until, window.latest_date_covered)
        _save_cursor(database, organization_id, sobject, updated_until, deleted_until)
    for deleted in client.deleted_windows(sobject, deleted_start, started):
        if deleted.records:
            with database.session() as session:
                ctx = _context(session, organization_id, result)
                _apply_deleted(ctx, sobject, {r.id: r.deleted_at for r in deleted.records})
        deleted_until = max(deleted_until, deleted.latest_date_covered)
        _save_cursor(database, organization_id, sobject, updated_until, deleted_until)


def _save_cursor(
    database: Database,
    organization_id: str,
    sobject: str,
    updated_until: datetime,
    deleted_until: datetime,
) -> None:
    with database.session() as session:
        SalesforceRepository(session, organization_id).save_cursor(
            _cursor_key(sobject),
            updated_until=updated_until,
            deleted_until=deleted_until,
            loaded=False,
        )


def _context(session: Any, organization_id: str, result: PullResult) -> _Context:
    repo = SalesforceRepository(session, organization_id)
    connection = repo.connection()
    links = repo.user_links()
    return _Context(
        repo=repo,
        # Not queued for the writer: Salesforce already holds what is applied here.
        crm=EmbeddedCrm(session, organization_id, queue_changes=False),
        owners={link.salesforce_user_id: member for member, link in links.items()},
        integration_user_id=connection.integration_user_id if connection else None,
        result=result,
    )


def pull_salesforce_changes(
    database: Database,
    organization_id: str,
    *,
    settings: Settings,
    box: SecretBox,
    now: datetime | None = None,
    http: requests.Session | None = None,
) -> PullResult:
    """Bring Events and Tasks created, changed or deleted in Salesforce since the last poll
    into the local store (see the module docstring); Calendar Sync and Task Sync then write
    them to the members' calendars and To Do lists. Each page commits on its own, each
    object's cursor after its changes; stops, keeping what it applied, at the API limit (or
    m365sync's share of it). Costs two requests per object per poll, and one query per 200
    changed records."""
    started = now or utcnow()
    result = PullResult()
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        row = repo.connection()
        secrets = working_secrets(row, box, refused="Changes made in Salesforce can't be read")
        assert row is not None
        connected_at = row.connected_at or row.created_at
    with open_client(secrets, settings, http=http) as client:
        try:
            for sobject in ("Event", "Task"):
                _poll(database, client, organization_id, sobject, connected_at, started, result)
        except LimitExceeded:
            result.paused = True  # what was applied is kept; the next poll goes on from there
        finally:
            result.api_calls = client.api_calls
            with database.session() as session:
                connection = SalesforceRepository(session, organization_id).connection()
                if connection is not None:
                    remember(connection, client, box)
    return result


def pull_salesforce_changes_everywhere(
    database: Database, *, settings: Settings, box: SecretBox
) -> dict[str, PullResult]:
    """``pull_salesforce_changes`` for every organization with a working Salesforce
    connection (the scheduler's job); one organization's failure does not stop the
    others'."""
    with database.session() as session:
        organizations = SalesforceRepository.working_organizations(session)
    results: dict[str, PullResult] = {}
    for organization_id in organizations:
        try:
            results[organization_id] = pull_salesforce_changes(
                database, organization_id, settings=settings, box=box
            )
        except Exception as error:  # one organization's trouble must not stop the others'
            log.exception("could not pull Salesforce changes for organization %s", organization_id)
            results[organization_id] = PullResult(error=str(error))
    return results
