"""The Salesforce writer: drains the local store's activities into Salesforce, exactly once.

The Graph sync engine never waits on Salesforce: it commits each page's activities to the
local store with its cursor, and the same transaction queues them here
(``salesforce_activity_records``: one row per activity, its ``version`` bumped by every
local change). ``drain_salesforce`` then writes what is due, in rounds of up to 1,000
activities:

- an email is ONE ``EmailMessage`` (upserted by ``M365Sync_Message_Id__c``, the Internet
  Message-ID) with an ``EmailMessageRelation`` per matched Contact, Lead and User, by role
  (``FromAddress``, ``ToAddress``, ``CcAddress``, ``BccAddress``), ``RelatedToId`` the
  Account (or its only open Opportunity); without Enhanced Email, a ``Task`` whose
  ``TaskSubtype`` is ``Email``;
- a meeting is ONE ``Event`` (by ``M365Sync_Event_Id__c``, the iCalUId) with an
  ``EventRelation`` per matched person and attending member; a task is a ``Task`` (by
  ``M365Sync_Todo_Id__c``); both owned by the member's Salesforce user;
- records are written 200 a call; relations, small, 1,000 a call (five collections in one
  composite): about 8 API requests per 1,000 emails.

Exactly once, across two systems: before anything is sent, the round marks its records
``uncertain`` and commits; the answers are recorded (and the mark cleared) in a second
transaction. A record still marked when a round starts was sent by a round that never
recorded the answer (a crash, a kill, a lost connection): Salesforce is asked what it holds
(by external id, and the relations by parent) before anything is written again. Records
are created by upserting on their external id, so even a lost mark creates no second
record; a sent EmailMessage is never updated (Salesforce refuses that).

Failures by category (``m365sync.salesforce.errors``): transient → retried with back-off;
an ended session → the client signs in again once; the org's API limit or m365sync's share
of it → the organization's writer pauses, with the time it resumes; a refusal only a person
can fix (a validation rule, a duplicate rule, a missing field) → that record is parked with
the rule and the record named, and the others go on; a sign-in refused → the connection
needs reconnecting and the writer stops.
"""

from __future__ import annotations

import hashlib
import html
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

import requests
from sqlalchemy import Boolean, Integer, String, Table, bindparam, case, literal, or_, update

from m365sync.crm.models import (
    ActivityKind,
    AddressChoice,
    EmailTarget,
    SalesforceActivityRecord,
    SalesforceConnection,
    SalesforceMirrorRecord,
    SalesforceStatus,
    WriteState,
)
from m365sync.crm.salesforce_access import ConnectionSecrets, open_client, remember
from m365sync.crm.salesforce_repository import (
    ActivityFields,
    DueWrite,
    SalesforceRepository,
)
from m365sync.crm.salesforce_schemas import DrainResult, DrainStatus
from m365sync.crm.service import file_size_text
from m365sync.crypto import SecretBox
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.salesforce import (
    COLLECTION_SIZE,
    RecordResult,
    SalesforceClient,
    SalesforceError,
)
from m365sync.salesforce.errors import (
    AuthFailed,
    LimitExceeded,
    RelatedRecordGone,
    SessionExpired,
    Transient,
    UnexpectedResponse,
)
from m365sync.settings import Settings

__all__ = ["ROUND_SIZE", "drain_salesforce"]

ROUND_SIZE = 1_000
"""Activities per round: five upserts of 200, and their relations in one or a few calls."""
LEASE = timedelta(minutes=5)
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
PAUSE_UNKNOWN = timedelta(minutes=15)
EXTERNAL_ID_MAX = 255
TEXT_MAX = 32_000
BODY_MAX = 131_072

MESSAGE_ID = "M365Sync_Message_Id__c"
EVENT_ID = "M365Sync_Event_Id__c"
TODO_ID = "M365Sync_Todo_Id__c"
RELATION_OBJECT = {"EmailMessage": "EmailMessageRelation", "Event": "EventRelation"}
PARENT_FIELD = {"EmailMessageRelation": "EmailMessageId", "EventRelation": "EventId"}
ROLES = {"from": "FromAddress", "to": "ToAddress", "cc": "CcAddress", "bcc": "BccAddress"}
ROLE_ORDER = ("from", "to", "cc", "bcc")
TODO_STATUS = {
    "notStarted": "Not Started",
    "inProgress": "In Progress",
    "completed": "Completed",
    "waitingOnOthers": "Waiting on someone else",
    "deferred": "Deferred",
}
TODO_PRIORITY = {"high": "High", "normal": "Normal", "low": "Low"}


def external_value(value: str) -> str:
    """An external id as stored in Salesforce's Text(255) field: the value itself, or, when
    longer, a digest of it (stable, so the same item always maps to the same record)."""
    if len(value) <= EXTERNAL_ID_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _answered(error: SalesforceError) -> bool:
    """Salesforce answered (so a refused write did not happen), as opposed to a call whose
    fate is unknown (a timeout, a connection dropped after the request was sent)."""
    if isinstance(error, LimitExceeded | AuthFailed | SessionExpired):
        return True
    if error.http_status is not None:
        return True
    code = error.code or ""
    return bool(code) and code.replace("_", "").isupper()


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_MAX, BACKOFF_FIRST * (1 << min(20, max(0, attempts - 1))))


@dataclass
class _Item:
    """One activity's write in a round, detached from the database."""

    activity_id: str
    version: int
    written_version: int
    sobject: str
    external_field: str
    external_id: str
    salesforce_id: str | None
    was_uncertain: bool
    attempts: int
    known: set[str]
    """Salesforce ids of the people the record is known to be related to."""
    delete: bool = False
    create: dict[str, Any] = field(default_factory=dict)
    change: dict[str, Any] | None = None
    """Fields to update on an existing record (None: the record can't be updated)."""
    relations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Relation target id → the relation record's fields (without the parent id)."""
    unmatched: str = ""
    error: SalesforceError | None = None
    sent: bool = False
    """Part of a call this round (its fate is then ``uncertain_after``)."""
    resolved: bool = False
    """A lost round's record was looked up in Salesforce: no longer uncertain."""
    uncertain_after: bool = False
    wrote: bool = False
    deleted: bool = False
    related: int = 0

    @property
    def uncertain(self) -> bool:
        if self.sent:
            return self.uncertain_after
        return self.was_uncertain and not self.resolved

    @property
    def finished(self) -> bool:
        """Salesforce holds the activity as the local store does (nothing left to write)."""
        if self.error is not None or self.unmatched:
            return False
        if self.delete:
            return self.deleted
        return (
            self.salesforce_id is not None
            and not self.missing
            and (self.wrote or self.change is None or self.version <= self.written_version)
        )

    @property
    def missing(self) -> list[str]:
        return [target for target in self.relations if target not in self.known]


@dataclass
class _People:
    """Who the round's activities involve, in Salesforce's ids."""

    person: dict[str, tuple[str, str, str]]
    """Local contact or lead id → (Salesforce id, object, address)."""
    account: dict[str, str]
    """Local account id → Salesforce Account (or its only open Opportunity) id."""
    member_email: dict[str, str]
    member_user: dict[str, str]
    """Member id → Salesforce user id."""


class _Stop(Exception):
    """Stop the drain: the API limit is reached or the sign-in is refused."""

    def __init__(self, error: SalesforceError) -> None:
        super().__init__(error.message)
        self.error = error


# -- planning (from the local store) --------------------------------------------------------


def _people(repo: SalesforceRepository, activity_ids: Sequence[str]) -> tuple[_People, Any, Any]:
    links = repo.activity_people(activity_ids)
    accounts = repo.activity_accounts(activity_ids)
    local_people = {pid for pairs in links.values() for _, pid in pairs}
    local_accounts = {aid for ids in accounts.values() for aid in ids}
    person: dict[str, tuple[str, str, str]] = {}
    for row in repo.mirror_rows_for_local(local_people):  # oldest Salesforce record first
        if row.sobject in ("Contact", "Lead") and row.local_id not in person:
            person[row.local_id] = (row.salesforce_id, row.sobject, row.email or "")
    opportunities = repo.open_opportunities(local_accounts)
    wanted = set(local_accounts) | {o[0] for o in opportunities.values() if len(o) == 1}
    mirrored = {r.local_id: r.salesforce_id for r in repo.mirror_rows_for_local(wanted)}
    account: dict[str, str] = {}
    for local in local_accounts:
        only = opportunities.get(local, [])
        target = mirrored.get(only[0]) if len(only) == 1 else None
        target = target or mirrored.get(local)
        if target:
            account[local] = target
    members = {m.id: m.email.lower() for m in repo.members()}
    users = {mid: link.salesforce_user_id for mid, link in repo.user_links().items()}
    return _People(person, account, members, users), links, accounts


def _roles(activity: ActivityFields) -> dict[str, str]:
    """Address → its first role on the activity (from, to, cc, bcc, organizer...)."""
    roles: dict[str, str] = {}
    for participant in activity.participants or []:
        address = str(participant.get("address") or "").lower()
        role = str(participant.get("role") or "")
        if address and (address not in roles or _rank(role) < _rank(roles[address])):
            roles[address] = role
    return roles


def _rank(role: str) -> int:
    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


def _addresses(activity: ActivityFields, role: str) -> str | None:
    found = [
        str(p.get("address"))
        for p in activity.participants or []
        if p.get("role") == role and p.get("address")
    ]
    return "; ".join(found)[:4000] or None


def _name_of(activity: ActivityFields, address: str | None) -> str | None:
    for participant in activity.participants or []:
        if address and str(participant.get("address") or "").lower() == address.lower():
            return str(participant.get("name") or "")[:1000] or None
    return None


def _plan_item(
    row: DueWrite,
    activity: ActivityFields | None,
    people: _People,
    links: dict[str, list[tuple[str, str]]],
    accounts: dict[str, list[str]],
    holders: dict[str, set[str]],
    email_target: EmailTarget,
    chosen: dict[str, tuple[str, str]] | None = None,
) -> _Item:
    """``chosen``: address → (object, Salesforce id) a rep related it to in the unresolved
    queue; a Contact or Lead joins the matched people, an Account or Opportunity is what the
    activity is related to when nothing else is."""
    item = _Item(
        activity_id=row.activity_id,
        version=row.version,
        written_version=row.written_version,
        sobject=row.sobject,
        external_field="",
        external_id="",
        salesforce_id=row.salesforce_id,
        was_uncertain=row.uncertain,
        attempts=row.attempts,
        known=set(row.relations or []),
    )
    if activity is None:
        item.delete = True
        return item
    kind = ActivityKind(activity.kind)
    item.external_id = external_value(activity.external_id)
    if kind == ActivityKind.EMAIL:
        item.sobject = "EmailMessage" if email_target == EmailTarget.EMAIL_MESSAGE else "Task"
        item.external_field = MESSAGE_ID
    elif kind == ActivityKind.EVENT:
        item.sobject, item.external_field = "Event", EVENT_ID
    else:
        item.sobject, item.external_field = "Task", TODO_ID
    if row.sobject and row.sobject != item.sobject:
        item.salesforce_id = None  # written as another object before (Enhanced Email switched)
        item.known = set()
    item.delete = activity.deleted_at is not None or (
        kind == ActivityKind.EVENT and activity.is_cancelled
    )
    if item.delete:
        return item
    roles = _roles(activity)
    matched = [
        people.person[pid] for _, pid in sorted(links.get(activity.id, [])) if pid in people.person
    ]
    matched.sort(key=lambda p: p[1] != "Contact")  # contacts first, then leads
    what = next(
        (people.account[a] for a in accounts.get(activity.id, []) if a in people.account), None
    )
    chosen_what = None
    for address in sorted(roles):
        sobject, sfid = (chosen or {}).get(address, ("", ""))
        if sobject in ("Contact", "Lead") and all(m[0] != sfid for m in matched):
            matched.append((sfid, sobject, address))
        elif sobject in ("Account", "Opportunity") and chosen_what is None:
            chosen_what = sfid
    what = what or chosen_what
    members = set(holders.get(activity.id, set()))
    members |= {
        mid for mid, email in people.member_email.items() if email in roles
    }  # members on the message, synced or not
    owner_member = activity.owner_member_id
    sender = (activity.from_address or "").lower()
    outgoing_member = next((m for m, e in people.member_email.items() if e == sender), None)
    if outgoing_member is not None:  # sent or organized by a member: theirs
        owner_member = outgoing_member
    owner_user = people.member_user.get(owner_member or "") or next(
        (people.member_user[m] for m in sorted(members) if m in people.member_user), None
    )
    if kind == ActivityKind.TASK:
        if owner_user is None:
            item.unmatched = (
                "The member whose To Do list holds this task has no Salesforce user: match "
                "them to one so the task is written as theirs."
            )
            return item
        _plan_todo(item, activity, owner_user)
        return item
    if not matched and chosen_what is None and item.salesforce_id is None:
        item.unmatched = (
            "No Salesforce contact or lead takes part in it, so there is nothing to relate it "
            "to in Salesforce."
        )
        return item
    who = matched[0][0] if matched else None
    if kind == ActivityKind.EMAIL and item.sobject == "EmailMessage":
        _plan_email_message(item, activity, what, outgoing_member is not None)
        for sfid, _, address in matched:
            role = ROLES.get(roles.get(address.lower(), "to"), "ToAddress")
            item.relations.setdefault(sfid, {"RelationId": sfid, "RelationType": role})
        for member in sorted(members):
            user = people.member_user.get(member)
            if user:
                role = ROLES.get(roles.get(people.member_email[member], "to"), "ToAddress")
                item.relations.setdefault(user, {"RelationId": user, "RelationType": role})
    elif kind == ActivityKind.EMAIL:
        _plan_email_task(item, activity, who, what, owner_user)
    else:
        _plan_event(item, activity, who, what, owner_user)
        for sfid, _, _ in matched:
            item.relations.setdefault(
                sfid, {"RelationId": sfid, "IsParent": True, "IsInvitee": False}
            )
        for member in sorted(members):
            user = people.member_user.get(member)
            if user and user != owner_user:
                item.relations.setdefault(user, {"RelationId": user, "IsInvitee": True})
    return item


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _attachment_note(activity: ActivityFields) -> str:
    """One line naming the email's attachments (their files stay in the mailbox), or ""."""
    listed = [
        f"{a.get('name') or '(no name)'} ({a.get('contentType') or 'unknown type'}, "
        f"{file_size_text(a.get('size'))})"
        for a in activity.attachments or []
        if isinstance(a, dict)
    ]
    return f"Attachments (kept in the mailbox): {'; '.join(listed)}" if listed else ""


def _body_with_note(activity: ActivityFields, limit: int) -> str:
    """The body, cut to leave room for the attachment note after it."""
    note = _attachment_note(activity)
    if not note:
        return (activity.body or "")[:limit]
    if activity.body_type == "html":
        note = f"<p>{html.escape(note)}</p>"
        joined = "\n"
    else:
        joined = "\n\n"
    room = max(0, limit - len(note) - len(joined))
    body = (activity.body or "")[:room]
    return f"{body}{joined}{note}" if body else note[:limit]


def _plan_email_message(
    item: _Item, activity: ActivityFields, what: str | None, outgoing: bool
) -> None:
    body = _body_with_note(activity, BODY_MAX) or None
    identifier = activity.external_id
    item.create = _clean(
        {
            MESSAGE_ID: item.external_id,
            "Subject": activity.subject[:3000],
            "HtmlBody" if activity.body_type == "html" else "TextBody": body,
            "FromAddress": activity.from_address,
            "FromName": _name_of(activity, activity.from_address),
            "ToAddress": _addresses(activity, "to"),
            "CcAddress": _addresses(activity, "cc"),
            "BccAddress": _addresses(activity, "bcc"),
            "MessageDate": _iso(activity.occurred_at),
            "MessageIdentifier": identifier
            if len(identifier) <= EXTERNAL_ID_MAX and not identifier.startswith("graph:")
            else None,
            "Status": "3" if outgoing else "1",
            "Incoming": not outgoing,
            "RelatedToId": what,
        }
    )
    item.change = None  # a sent email keeps what it was sent with


def _email_description(activity: ActivityFields) -> str:
    lines = [f"From: {activity.from_address or ''}"]
    for role in ("to", "cc"):
        found = _addresses(activity, role)
        if found:
            lines.append(f"{role.capitalize()}: {found}")
    note = _attachment_note(activity)
    if note:
        lines.append(note)
    lines.append("")
    lines.append(activity.body or "")
    return "\n".join(lines)[:TEXT_MAX]


def _plan_email_task(
    item: _Item, activity: ActivityFields, who: str | None, what: str | None, owner: str | None
) -> None:
    fields = _clean(
        {
            "Subject": f"Email: {activity.subject}"[:255],
            "Description": _email_description(activity),
            "ActivityDate": activity.occurred_at.date().isoformat()
            if activity.occurred_at
            else None,
            "Status": "Completed",
            "WhoId": who,
            "WhatId": what,
            "OwnerId": owner,
        }
    )
    item.create = {MESSAGE_ID: item.external_id, "TaskSubtype": "Email", **fields}
    item.change = fields


def _plan_event(
    item: _Item, activity: ActivityFields, who: str | None, what: str | None, owner: str | None
) -> None:
    fields: dict[str, Any] = {
        "Subject": activity.subject[:255],
        "Location": activity.location[:255] or None,
        "Description": (activity.body or "")[:TEXT_MAX] or None,
        "WhoId": who,
        "WhatId": what,
        "OwnerId": owner,
    }
    starts, ends = activity.starts_at, activity.ends_at
    if activity.is_all_day and starts is not None:
        days = max(1, ((ends or starts) - starts).days)
        fields.update(
            IsAllDayEvent=True,
            ActivityDate=starts.date().isoformat(),
            DurationInMinutes=days * 1440,
        )
    else:
        fields.update(IsAllDayEvent=False, StartDateTime=_iso(starts), EndDateTime=_iso(ends))
    fields = _clean(fields)
    item.create = {EVENT_ID: item.external_id, **fields}
    item.change = fields


def _plan_todo(item: _Item, activity: ActivityFields, owner: str) -> None:
    fields = _clean(
        {
            "Subject": activity.subject[:255],
            "Description": (activity.body or "")[:TEXT_MAX] or None,
            "ActivityDate": activity.due_at.date().isoformat() if activity.due_at else None,
            "Status": TODO_STATUS.get(activity.status, "Not Started"),
            "Priority": TODO_PRIORITY.get(activity.importance, "Normal"),
            "OwnerId": owner,
        }
    )
    item.create = {TODO_ID: item.external_id, "TaskSubtype": "Task", **fields}
    item.change = fields


# -- the Salesforce side of a round ---------------------------------------------------------


class _Round:
    def __init__(self, client: SalesforceClient, items: list[_Item]) -> None:
        self.client = client
        self.items = items

    def run(self) -> None:
        self._recover()
        self._delete()
        self._create()
        self._update()
        self._relate()

    def _stop_if(self, error: SalesforceError | None) -> None:
        if isinstance(error, LimitExceeded | AuthFailed | SessionExpired):
            raise _Stop(error)

    def _results(
        self, items: Sequence[_Item], call: Callable[[], list[RecordResult]]
    ) -> Iterable[tuple[_Item, RecordResult]]:
        """The results of one call (at most 200 records), each with its item; a call that
        failed as a whole stops the drain (limit, sign-in) or leaves its records retrying,
        uncertain when Salesforce may have saved them before the answer was lost."""
        results = call()
        errors = {id(r.error) for r in results}
        whole = len(results) > 0 and len(errors) == 1 and results[0].error is not None
        if whole:
            error = results[0].error
            assert error is not None
            self._stop_if(error)
        for item, result in zip(items, results, strict=True):
            item.sent = True
            item.uncertain_after = result.error is not None and not _answered(result.error)
            yield item, result

    def _recover(self) -> None:
        """Records a crashed round may have written: ask Salesforce what it holds."""
        lost = [i for i in self.items if i.was_uncertain and not i.unmatched]
        by_field: dict[tuple[str, str], list[_Item]] = {}
        for item in lost:
            if item.salesforce_id is None and item.external_field:
                by_field.setdefault((item.sobject, item.external_field), []).append(item)
        for (sobject, external_field), items in by_field.items():
            found = self._lookup(
                sobject,
                external_field,
                [i.external_id for i in items],
                ("Id", external_field, "CreatedDate"),
            )
            by_value: dict[str, str] = {}
            for record in sorted(found, key=lambda r: str(r.get("CreatedDate"))):
                by_value.setdefault(str(record.get(external_field)).lower(), str(record["Id"]))
            for item in items:
                item.salesforce_id = by_value.get(item.external_id.lower())
        for relation, parent_field in PARENT_FIELD.items():
            parents = {
                i.salesforce_id: i
                for i in lost
                if i.salesforce_id and RELATION_OBJECT.get(i.sobject) == relation
            }
            if not parents:
                continue
            found = self._lookup(
                relation, parent_field, sorted(parents), ("Id", parent_field, "RelationId")
            )
            for record in found:
                parent = parents.get(str(record.get(parent_field)))
                if parent is not None and record.get("RelationId"):
                    parent.known.add(str(record["RelationId"]))
        for item in lost:
            if item.error is None:
                item.resolved = True

    def _lookup(
        self, sobject: str, field: str, values: list[str], select: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        try:
            return self.client.find_by(sobject, field, values, select=select)
        except SalesforceError as error:
            self._stop_if(error)
            for item in self.items:
                if item.was_uncertain and item.error is None:
                    item.error = error
            return []

    def _ready(self, item: _Item) -> bool:
        return not item.unmatched and item.error is None

    def _delete(self) -> None:
        doomed = [i for i in self.items if i.delete and self._ready(i)]
        for item in doomed:
            if item.salesforce_id is None:
                item.deleted = True
        targets = [i for i in doomed if i.salesforce_id]
        for start in range(0, len(targets), COLLECTION_SIZE):
            chunk = targets[start : start + COLLECTION_SIZE]
            ids = [i.salesforce_id for i in chunk if i.salesforce_id]
            for item, result in self._results(chunk, partial(self.client.delete, ids)):
                gone = isinstance(result.error, RelatedRecordGone) or (
                    result.error is not None
                    and result.error.code in ("INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND")
                )
                if result.success or gone:
                    item.deleted = True
                else:
                    item.error = result.error

    def _create(self) -> None:
        groups: dict[tuple[str, str], list[_Item]] = {}
        for item in self.items:
            if not item.delete and self._ready(item) and item.salesforce_id is None:
                groups.setdefault((item.sobject, item.external_field), []).append(item)
        for (sobject, external_field), items in groups.items():
            for start in range(0, len(items), COLLECTION_SIZE):
                chunk = items[start : start + COLLECTION_SIZE]
                records = [i.create for i in chunk]
                for item, result in self._results(
                    chunk, partial(self.client.upsert, sobject, external_field, records)
                ):
                    if result.success and result.id:
                        item.salesforce_id, item.wrote = result.id, True
                    else:
                        item.error = result.error or UnexpectedResponse(
                            "Salesforce saved the record without giving its id."
                        )

    def _update(self) -> None:
        groups: dict[str, list[_Item]] = {}
        for item in self.items:
            if (
                not item.delete
                and self._ready(item)
                and item.salesforce_id is not None
                and not item.wrote
                and item.change is not None
                and item.version > item.written_version
            ):
                groups.setdefault(item.sobject, []).append(item)
        for sobject, items in groups.items():
            for start in range(0, len(items), COLLECTION_SIZE):
                chunk = items[start : start + COLLECTION_SIZE]
                records = [{"Id": i.salesforce_id, **(i.change or {})} for i in chunk]
                for item, result in self._results(
                    chunk, partial(self.client.update, sobject, records)
                ):
                    if result.success:
                        item.wrote = True
                    else:
                        item.error = result.error

    def _relate(self) -> None:
        wanted: list[tuple[_Item, str, str, dict[str, Any]]] = []
        for item in self.items:
            relation = RELATION_OBJECT.get(item.sobject)
            if relation is None or item.delete or not self._ready(item) or not item.salesforce_id:
                continue
            for target in item.missing:
                fields = {PARENT_FIELD[relation]: item.salesforce_id, **item.relations[target]}
                wanted.append((item, target, relation, fields))
        if not wanted:
            return
        wanted.sort(key=lambda w: w[2])  # one object after the other in each collection
        results = self.client.create_many([(relation, fields) for _, _, relation, fields in wanted])
        errors = {id(r.error) for r in results}
        if len(errors) == 1 and results[0].error is not None:
            self._stop_if(results[0].error)
        for (item, target, _, _), result in zip(wanted, results, strict=True):
            error = result.error
            item.sent = True
            if result.success:
                item.known.add(target)
                item.related += 1
            elif error is not None and error.code == "DUPLICATE_VALUE":
                item.known.add(target)  # related already
            elif isinstance(error, RelatedRecordGone):
                item.known.add(target)  # the person is gone from Salesforce: nothing to relate
            elif item.error is None:
                item.error = error
            if error is not None and not _answered(error):
                item.uncertain_after = True


# -- recording a round (in the local store) -------------------------------------------------


def _values(item: _Item, now: datetime) -> tuple[dict[str, Any], WriteState]:
    """The ledger row's new values after a round, and the state it goes to (if the
    activity did not change meanwhile; otherwise it stays pending for the next round)."""
    values: dict[str, Any] = {
        "sobject": item.sobject,
        "salesforce_id": None if item.deleted else item.salesforce_id,
        "relations": sorted(item.known),
        "uncertain": item.uncertain,
        "updated_at": now,
    }
    if item.unmatched:
        values.update(reason=item.unmatched, fix="", error_code=None)
        return values, WriteState.UNMATCHED
    error = item.error
    if error is None:
        if not item.finished:
            return values, WriteState.PENDING  # a stopped round: tried again next time
        values.update(
            written_version=item.version,
            attempts=0,
            next_attempt_at=None,
            reason="",
            fix="",
            error_code=None,
            synced_at=now,
        )
        return values, WriteState.SYNCED
    attempts = item.attempts + 1
    values.update(
        attempts=attempts,
        reason=error.message[:4000],
        fix=(error.fix or "")[:4000],
        error_code=(error.code or type(error).__name__)[:100],
    )
    if isinstance(error, Transient) or not _answered(error):
        values.update(next_attempt_at=now + _backoff(attempts))
        return values, WriteState.PENDING
    values.update(next_attempt_at=None)
    return values, WriteState.PARKED


_ALWAYS = ("sobject", "salesforce_id", "relations", "uncertain", "updated_at")
_SOMETIMES = (
    "written_version",
    "attempts",
    "next_attempt_at",
    "reason",
    "fix",
    "error_code",
    "synced_at",
)
"""Ledger columns a round's outcome may leave as they were (a flag per row says which)."""


def _record_statement() -> Any:
    """One UPDATE for every row of a round (run as an executemany): the columns a row's
    outcome sets, each other column kept (``CASE WHEN :set_x THEN :x ELSE x``), and its
    final state only if the activity's ``version`` is still the one written (checked by
    the UPDATE itself, so a change committed meanwhile by the sync engine keeps it
    pending)."""
    table = cast(Table, SalesforceActivityRecord.__table__)
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=table.c[name].type) for name in _ALWAYS
    }
    for name in _SOMETIMES:
        values[name] = case(
            (
                bindparam(f"set_{name}", type_=Boolean()),
                bindparam(f"v_{name}", type_=table.c[name].type),
            ),
            else_=table.c[name],
        )
    values["state"] = case(
        (
            or_(
                bindparam("w_pending", type_=Boolean()),
                table.c.version != bindparam("w_version", type_=Integer()),
            ),
            literal(WriteState.PENDING.value),
        ),
        else_=bindparam("w_state", type_=String()),
    )
    return update(table).where(table.c.activity_id == bindparam("w_id")).values(values)


def _record(repo: SalesforceRepository, items: Sequence[_Item], now: datetime) -> DrainResult:
    """Record every item of a round in one transaction, in one statement (see
    ``_record_statement``)."""
    counts = DrainResult()
    rows: list[dict[str, Any]] = []
    # In id order, like every writer of these rows: two transactions never deadlock.
    for item in sorted(items, key=lambda i: i.activity_id):
        values, state = _values(item, now)
        row: dict[str, Any] = {
            "w_id": item.activity_id,
            "w_version": item.version,
            "w_pending": state == WriteState.PENDING,
            "w_state": state.value,
        }
        for name in _ALWAYS:
            row[f"v_{name}"] = values[name]
        for name in _SOMETIMES:
            row[f"set_{name}"] = name in values
            row[f"v_{name}"] = values.get(name)
        rows.append(row)
        counts.written += int(item.wrote)
        counts.deleted += int(item.deleted and item.sent)
        counts.related += item.related
        if state == WriteState.SYNCED:
            counts.synced += 1
        elif state == WriteState.PARKED:
            counts.parked += 1
        elif state == WriteState.UNMATCHED:
            counts.unmatched += 1
        elif item.error is not None:
            counts.retrying += 1
    if rows:
        repo.session.execute(_record_statement(), rows)
    return counts


# -- the service ----------------------------------------------------------------------------


def _writer_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def drain_salesforce(
    database: Database,
    organization_id: str,
    *,
    settings: Settings,
    box: SecretBox,
    round_size: int = ROUND_SIZE,
    max_rounds: int = 20,
    now: Callable[[], datetime] = utcnow,
    http: requests.Session | None = None,
) -> DrainResult:
    """Write the organization's due activities to Salesforce (see the module docstring):
    rounds of ``round_size`` until nothing is due, ``max_rounds`` are done, or the writer
    must stop. Safe to call from several workers at once (one drains, the others answer
    ``busy``) and to kill at any point (the next drain converges without duplicates)."""
    owner = _writer_id()
    total = DrainResult()
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        row = repo.connection()
        early = _not_ready(row, now())
        if early is not None:
            return early
        assert row is not None
        if not repo.claim_writer(owner, now() + LEASE, now()):
            return DrainResult(
                status=DrainStatus.BUSY, message="Another worker is writing to Salesforce now."
            )
        secrets = ConnectionSecrets.of(row, box)
        email_target = row.email_target or EmailTarget.EMAIL_MESSAGE
    try:
        with open_client(secrets, settings, http=http) as client:
            try:
                for _ in range(max_rounds):
                    done = _round(
                        database, organization_id, owner, client, email_target, round_size, now
                    )
                    _add(total, done)
                    if done is None or done.status != DrainStatus.DRAINED:
                        break
            finally:
                total.api_calls = client.api_calls
                with database.session() as session:
                    connection = SalesforceRepository(session, organization_id).connection()
                    if connection is not None:
                        remember(connection, client, box)
    finally:
        with database.session() as session:
            SalesforceRepository(session, organization_id).release_writer(owner)
    return total


def _not_ready(row: SalesforceConnection | None, now: datetime) -> DrainResult | None:
    if row is None or row.status in (SalesforceStatus.PENDING, SalesforceStatus.DISCONNECTED):
        return DrainResult(
            status=DrainStatus.NOT_CONNECTED,
            message="This organization has no working Salesforce connection.",
            fix="Connect Salesforce first.",
        )
    if row.status == SalesforceStatus.NEEDS_RECONNECT:
        return DrainResult(
            status=DrainStatus.NEEDS_RECONNECT, message=row.status_detail, fix=row.status_fix
        )
    if row.writer_paused_until is not None and row.writer_paused_until > now:
        return DrainResult(
            status=DrainStatus.PAUSED,
            message=row.writer_pause_reason,
            resumes_at=row.writer_paused_until,
        )
    return None


def _add(total: DrainResult, done: DrainResult | None) -> None:
    if done is None:
        return
    for name in ("written", "related", "deleted", "synced", "retrying", "parked", "unmatched"):
        setattr(total, name, getattr(total, name) + getattr(done, name))
    total.status, total.message, total.fix = done.status, done.message, done.fix
    total.resumes_at = done.resumes_at


def _round(
    database: Database,
    organization_id: str,
    owner: str,
    client: SalesforceClient,
    email_target: EmailTarget,
    round_size: int,
    now: Callable[[], datetime],
) -> DrainResult | None:
    """One round; None when nothing was due."""
    _create_leads(database, organization_id, client, round_size, now)
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        rows = repo.due(now(), round_size)
        if not rows:
            return None
        ids = [r.activity_id for r in rows]
        activities = repo.activities(ids)
        people, links, accounts = _people(repo, ids)
        holders = repo.holders(ids)
        chosen = _chosen(repo, activities.values())
        items = [
            _plan_item(
                row,
                activities.get(row.activity_id),
                people,
                links,
                accounts,
                holders,
                email_target,
                chosen,
            )
            for row in rows
        ]
        # Written before anything is sent: a crash from here on leaves the mark.
        repo.mark_uncertain([i.activity_id for i in items if not i.unmatched])
        repo.claim_writer(owner, now() + LEASE, now())
    stop: SalesforceError | None = None
    work = _Round(client, items)
    try:
        work.run()
    except _Stop as stopped:
        stop = stopped.error
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        stamp = now()
        result = _record(repo, items, stamp)
        if stop is not None:
            _stopped(repo, stop, stamp, result)
    return result


def _chosen(
    repo: SalesforceRepository, activities: Iterable[ActivityFields]
) -> dict[str, tuple[str, str]]:
    """What reps related the round's addresses to in the unresolved queue."""
    addresses = {a for activity in activities for a in _roles(activity)}
    return {
        address: (choice.sobject, choice.salesforce_id)
        for address, choice in repo.choices(addresses).items()
        if choice.salesforce_id and choice.choice != AddressChoice.DISMISSED
    }


@dataclass(frozen=True)
class _NewLead:
    local_id: str
    email: str
    fields: dict[str, Any]


def _create_leads(
    database: Database,
    organization_id: str,
    client: SalesforceClient,
    round_size: int,
    now: Callable[[], datetime],
) -> None:
    """With the admin's leave (``create_leads``), the people of the round's meetings that
    m365sync added as leads (a booked meeting's unknown invitee) become Salesforce Leads,
    owned by the meeting's member's user, before the meetings are planned, so each meeting
    relates to its Lead. Exactly once: Leads are looked up by address before any is
    created, so a crash between Salesforce's answer and the mirror row creates no second
    Lead. A Lead Salesforce refuses leaves its meeting unmatched."""
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        connection = repo.connection()
        if connection is None or not connection.create_leads:
            return
        activities = repo.activities([r.activity_id for r in repo.due(now(), round_size)])
        events = [
            a.id
            for a in activities.values()
            if a.kind == ActivityKind.EVENT and a.deleted_at is None
        ]
        leads = repo.unmirrored_leads(events) if events else {}
        if not leads:
            return
        users = {mid: link.salesforce_user_id for mid, link in repo.user_links().items()}
        wanted = [
            _NewLead(
                lead.id,
                lead.email.lower(),
                _clean(
                    {
                        "Email": lead.email,
                        "FirstName": lead.first_name[:40] or None,
                        "LastName": (lead.last_name or lead.email.split("@")[0])[:80],
                        "Company": (lead.company or lead.email.split("@")[-1])[:255],
                        "OwnerId": users.get(lead.owner_member_id or ""),
                    }
                ),
            )
            for lead in leads.values()
        ]
    found = {
        str(r.get("Email") or "").lower(): str(r["Id"])
        for r in client.find_by(
            "Lead", "Email", [w.email for w in wanted], select=("Id", "Email", "IsConverted")
        )
        if not r.get("IsConverted")
    }
    missing = [w for w in wanted if w.email not in found]
    if missing:
        results = client.create("Lead", [w.fields for w in missing])
        for lead, result in zip(missing, results, strict=True):
            if result.success and result.id:
                found[lead.email] = result.id
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        for lead in wanted:
            if lead.email in found and not repo.mirror_rows([found[lead.email]]):
                repo.add_mirror_row(
                    SalesforceMirrorRecord(
                        organization_id=organization_id,
                        salesforce_id=found[lead.email],
                        sobject="Lead",
                        local_id=lead.local_id,
                        email=lead.email,
                        created_at=now(),
                    )
                )


def _stopped(
    repo: SalesforceRepository, error: SalesforceError, now: datetime, result: DrainResult
) -> None:
    row = repo.connection()
    if row is None:
        return
    if isinstance(error, LimitExceeded):
        resumes = error.resumes_at or now + PAUSE_UNKNOWN
        row.writer_paused_until = resumes
        row.writer_pause_reason = (
            f"{error.message} Writing to Salesforce resumes at {resumes:%Y-%m-%d %H:%M} UTC."
        )
        result.status = DrainStatus.PAUSED
        result.message = row.writer_pause_reason
        result.fix = error.fix or ""
        result.resumes_at = resumes
        return
    row.status = SalesforceStatus.NEEDS_RECONNECT
    row.status_detail = error.message
    row.status_fix = error.fix or ""
    result.status = DrainStatus.NEEDS_RECONNECT
    result.message, result.fix = error.message, error.fix or ""
