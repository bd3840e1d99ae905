"""The embedded CRM store: ``CrmTarget`` on the product's own database (the default).

It is a repository: it queries, it never commits. Every method is scoped to one
organization. Writes are set-based (one ``SELECT ... IN`` and one multi-row ``INSERT``
per table per page) so a 1,000-message page costs a handful of statements, and inserts
ignore conflicts on the natural keys so two mailboxes logging the same email at the same
moment still produce one activity. An email's copies (``crm_email_copies``, one per
mailbox item) are upserted the same way (``INSERT ... ON CONFLICT DO UPDATE``): a copy
seen again takes its current folder and is live again.

Subjects and participants' display names are stored bounded (``SUBJECT_MAX_CHARS``,
``NAME_MAX_CHARS`` in ``crm.models``), whatever the caller hands in.

The email path is the hot one (a first sync logs tens of thousands of messages): its
inserts are compiled once per table and column list (``crm._bulk_insert``), and new
activity ids are time-ordered UUIDs (version 7 layout), so a page's rows append to the
indexes instead of landing on random B-tree pages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import and_, literal_column, or_, select, update
from sqlalchemy import delete as sa_delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from m365sync.crm._bulk_insert import Refresh, bulk_insert
from m365sync.crm.models import (
    NAME_MAX_CHARS,
    ActivityKind,
    CrmAccountDomain,
    CrmActivity,
    CrmActivityMember,
    CrmActivityPerson,
    CrmActivityRecord,
    CrmContact,
    CrmEmailCopy,
    CrmLead,
    CrmSequence,
    PersonKind,
    RecordKind,
    SalesforceAddressChoice,
    bounded_subject,
)
from m365sync.crm.salesforce_repository import queue_activities
from m365sync.crm.target import (
    EmailRecord,
    EventRecord,
    LinkedItem,
    NewLead,
    OutboundChange,
    Participant,
    PersonMatch,
    PushResult,
    TaskRecord,
    UpsertResult,
)
from m365sync.db.base import dialect_insert, new_id, utcnow

__all__ = ["EmbeddedCrm"]

CHUNK = 500
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ordered_ids(count: int) -> list[str]:
    """``count`` new UUIDs in the version 7 layout (48-bit Unix milliseconds, then a
    per-batch counter and random bits): unique like ``uuid4``, but increasing, so inserts
    append to primary-key and foreign-key indexes."""
    millis = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    head = f"{millis[:8]}-{millis[8:]}-7"
    noise = os.urandom(8 * count).hex()
    ids = []
    for index in range(count):
        r = noise[16 * index : 16 * index + 16]
        variant = "89ab"[int(r[0], 16) & 3]
        ids.append(f"{head}{index & 0xFFF:03x}-{variant}{r[1:4]}-{r[4:16]}")
    return ids


def _bounded_names(participants: Sequence[Participant]) -> Sequence[Participant]:
    """``participants`` with display names cut to ``NAME_MAX_CHARS`` (the list itself when
    none is longer: the usual case costs one pass and no copy)."""
    if all(len(p.name) <= NAME_MAX_CHARS for p in participants):
        return participants
    return [
        p if len(p.name) <= NAME_MAX_CHARS else replace(p, name=p.name[:NAME_MAX_CHARS])
        for p in participants
    ]


# Every column the email path writes: a prepared insert bypasses the models' Python-side
# defaults, so every NOT NULL column is listed (the last six with email constants).
_EMAIL_COLUMNS = (
    "id",
    "organization_id",
    "kind",
    "external_id",
    "subject",
    "body",
    "body_type",
    "headers_only",
    "occurred_at",
    "from_address",
    "participants",
    "conversation_id",
    "attachments",
    "owner_member_id",
    "modified_at",
    "created_at",
    "change_seq",
    "is_all_day",
    "location",
    "is_cancelled",
    "send_invitations",
    "status",
    "importance",
)
_EMAIL_CONSTANTS = (0, False, "", False, False, "", "normal")
_PERSON_COLUMNS = ("activity_id", "person_kind", "person_id")
_RECORD_COLUMNS = ("activity_id", "record_kind", "record_id")
_COPY_COLUMNS = ("member_id", "graph_item_id", "activity_id", "folder")
# A copy seen again (another page, a repeat, a move into another synced folder) is live
# again, in the folder it is in now.
_COPY_REFRESH = Refresh(
    key=("member_id", "graph_item_id"), take=("activity_id", "folder"), clear=("removed_at",)
)


class EmbeddedCrm:
    """``CrmTarget`` over SQLAlchemy, for one organization, inside the caller's session.

    With ``queue_changes`` (the organization writes to Salesforce), every activity a write
    creates or changes is queued for the Salesforce writer in the same transaction
    (``crm.salesforce_repository.queue_activities``), so the page's commit and the queue are
    one."""

    def __init__(
        self, session: Session, organization_id: str, *, queue_changes: bool = False
    ) -> None:
        self.session = session
        self.organization_id = organization_id
        self.queue_changes = queue_changes

    def _changed(self, activity_ids: Iterable[str]) -> None:
        if self.queue_changes:
            queue_activities(self.session, self.organization_id, set(activity_ids))

    # -- helpers ---------------------------------------------------------------------------
    def _insert_ignore(self, model: type[Any], rows: list[dict[str, Any]]) -> None:
        """Multi-row INSERT that skips rows whose natural key already exists: a Core
        executemany (no ORM unit of work: a page's thousand rows cost one statement)."""
        if not rows:
            return
        stmt = dialect_insert(self.session, model).on_conflict_do_nothing()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        for group in groups.values():
            self.session.execute(stmt, group)

    def _activity_ids(self, kind: ActivityKind, external_ids: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        ordered = sorted(set(external_ids))
        for chunk in _chunks(ordered):
            rows = self.session.execute(
                select(CrmActivity.external_id, CrmActivity.id).where(
                    CrmActivity.organization_id == self.organization_id,
                    CrmActivity.kind == kind,
                    CrmActivity.external_id.in_(chunk),
                )
            )
            found.update({ext: aid for ext, aid in rows})
        return found

    def next_change_seq(self) -> int:
        """The next CRM-side change number (one row per organization, locked by the update)."""
        updated = self.session.execute(
            update(CrmSequence)
            .where(CrmSequence.organization_id == self.organization_id)
            .values(value=CrmSequence.value + 1)
            .returning(CrmSequence.value)
        ).scalar_one_or_none()
        if updated is not None:
            return int(updated)
        self._insert_ignore(CrmSequence, [{"organization_id": self.organization_id, "value": 0}])
        return self.next_change_seq()

    # -- lookups ---------------------------------------------------------------------------
    def find_people(self, emails: Collection[str]) -> dict[str, PersonMatch]:
        wanted = sorted({e for e in emails if e})
        found: dict[str, PersonMatch] = {}
        for chunk in _chunks(wanted):
            for lead_id, email in self.session.execute(
                select(CrmLead.id, CrmLead.email).where(
                    CrmLead.organization_id == self.organization_id, CrmLead.email.in_(chunk)
                )
            ):
                found[email] = PersonMatch(PersonKind.LEAD, lead_id, email, None)
            for contact_id, email, account_id in self.session.execute(
                select(CrmContact.id, CrmContact.email, CrmContact.account_id).where(
                    CrmContact.organization_id == self.organization_id, CrmContact.email.in_(chunk)
                )
            ):
                found[email] = PersonMatch(PersonKind.CONTACT, contact_id, email, account_id)
        self._find_chosen_people([e for e in wanted if e not in found], found)
        return found

    def _find_chosen_people(self, emails: Sequence[str], found: dict[str, PersonMatch]) -> None:
        """Addresses a rep related to a Salesforce Contact or Lead, or made a Lead for, in the
        unresolved queue (``crm.salesforce_unresolved``): they match that person."""
        for chunk in _chunks(emails):
            for address, kind, local_id in self.session.execute(
                select(
                    SalesforceAddressChoice.address,
                    SalesforceAddressChoice.local_kind,
                    SalesforceAddressChoice.local_id,
                ).where(
                    SalesforceAddressChoice.organization_id == self.organization_id,
                    SalesforceAddressChoice.address.in_(chunk),
                    SalesforceAddressChoice.local_id.is_not(None),
                )
            ):
                if local_id is None:
                    continue
                if kind == PersonKind.CONTACT:
                    account_id = self.session.scalar(
                        select(CrmContact.account_id).where(CrmContact.id == local_id)
                    )
                    found[address] = PersonMatch(PersonKind.CONTACT, local_id, address, account_id)
                elif kind == PersonKind.LEAD:
                    found[address] = PersonMatch(PersonKind.LEAD, local_id, address, None)

    def find_accounts_by_domain(self, domains: Collection[str]) -> dict[str, str]:
        wanted = sorted({d for d in domains if d})
        found: dict[str, str] = {}
        for chunk in _chunks(wanted):
            rows = self.session.execute(
                select(CrmAccountDomain.domain, CrmAccountDomain.account_id).where(
                    CrmAccountDomain.organization_id == self.organization_id,
                    CrmAccountDomain.domain.in_(chunk),
                )
            )
            found.update({domain: account_id for domain, account_id in rows})
        return found

    def create_leads(
        self, leads: Sequence[NewLead], owner_member_id: str
    ) -> dict[str, PersonMatch]:
        rows = []
        for lead in leads:
            first, _, last = lead.name.strip().partition(" ")
            rows.append(
                {
                    "id": new_id(),
                    "organization_id": self.organization_id,
                    "email": lead.email,
                    "first_name": first[:100],
                    "last_name": last[:100],
                    "company": "",
                    "status": "new",
                    "source": "email_sync",
                    "owner_member_id": owner_member_id,
                    "created_at": utcnow(),
                }
            )
        self._insert_ignore(CrmLead, rows)
        return self.find_people([lead.email for lead in leads])

    # -- links -----------------------------------------------------------------------------
    def _link_who_and_what(self, pairs: Iterable[tuple[str, list[PersonMatch], list[str]]]) -> None:
        """Insert the people and account links that are missing."""
        people: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        seen_people: set[tuple[str, str, str]] = set()
        seen_records: set[tuple[str, str]] = set()
        for activity_id, matches, account_ids in pairs:
            for person in matches:
                key = (activity_id, person.kind.value, person.id)
                if key not in seen_people:
                    seen_people.add(key)
                    people.append(
                        {
                            "activity_id": activity_id,
                            "person_kind": person.kind,
                            "person_id": person.id,
                        }
                    )
            for account_id in account_ids:
                if (activity_id, account_id) not in seen_records:
                    seen_records.add((activity_id, account_id))
                    records.append(
                        {
                            "activity_id": activity_id,
                            "record_kind": RecordKind.ACCOUNT,
                            "record_id": account_id,
                        }
                    )
        self._insert_ignore(CrmActivityPerson, people)
        self._insert_ignore(CrmActivityRecord, records)

    def _link_members(self, rows: list[dict[str, Any]]) -> int:
        """Upsert (activity, member) links; returns how many were new."""
        if not rows:
            return 0
        by_key = {(r["activity_id"], r["member_id"]): r for r in rows}
        existing: dict[tuple[str, str], tuple[str | None, str | None, str, Any]] = {}
        ids = sorted({k[0] for k in by_key})
        for chunk in _chunks(ids):
            for aid, mid, item, ck, folder, removed in self.session.execute(
                select(
                    CrmActivityMember.activity_id,
                    CrmActivityMember.member_id,
                    CrmActivityMember.graph_item_id,
                    CrmActivityMember.change_key,
                    CrmActivityMember.folder,
                    CrmActivityMember.removed_at,
                ).where(CrmActivityMember.activity_id.in_(chunk))
            ):
                existing[(aid, mid)] = (item, ck, folder, removed)
        new_rows = [r for k, r in by_key.items() if k not in existing]
        for key, row in by_key.items():
            old = existing.get(key)
            if old is None:
                continue
            changes = {
                name: row[name]
                for name, index in (("graph_item_id", 0), ("change_key", 1), ("folder", 2))
                if name in row and row[name] != old[index]
            }
            if old[3] is not None:
                changes["removed_at"] = None
            if "pushed_seq" in row:
                changes["pushed_seq"] = row["pushed_seq"]
            if changes:
                self.session.execute(
                    update(CrmActivityMember)
                    .where(
                        CrmActivityMember.activity_id == key[0],
                        CrmActivityMember.member_id == key[1],
                    )
                    .values(**changes)
                )
        self._insert_ignore(CrmActivityMember, new_rows)
        return len(new_rows)

    # -- emails ----------------------------------------------------------------------------
    def upsert_emails(self, records: Sequence[EmailRecord]) -> UpsertResult:
        result = UpsertResult()
        merged: dict[str, EmailRecord] = {}
        copies: dict[tuple[str, str], EmailRecord] = {}
        for record in records:
            merged[record.external_id] = record
            copies[(record.member_id, record.graph_item_id)] = record
        if not merged:
            return result
        created, known = self._insert_emails(merged)
        result.created = len(created)
        result.unchanged = len(merged) - result.created
        if created:
            # Activities made just now have no links yet: plain inserts, no lookups.
            people: list[tuple[Any, ...]] = []
            accounts: list[tuple[Any, ...]] = []
            for ext, aid in created.items():
                r = merged[ext]
                people.extend({(aid, p.kind, p.id) for p in r.people})
                accounts.extend((aid, RecordKind.ACCOUNT, a) for a in set(r.account_ids))
            bulk_insert(self.session, CrmActivityPerson, _PERSON_COLUMNS, people)
            bulk_insert(self.session, CrmActivityRecord, _RECORD_COLUMNS, accounts)
        already_live: set[tuple[str, str]] = set()
        if known:
            revived = sorted(set(known.values()))
            # Settling another mailbox's copies may be deleting these emails right now: wait
            # for it, so that either it sees the copies linked below or they revive the email.
            self._lock_activities(revived)
            for chunk in _chunks(revived):
                # Back in a synced folder (restored, or a replay after deletion).
                self.session.execute(
                    update(CrmActivity)
                    .where(CrmActivity.id.in_(chunk), CrmActivity.deleted_at.is_not(None))
                    .values(deleted_at=None)
                )
            self._link_who_and_what(
                (known[ext], r.people, r.account_ids) for ext, r in merged.items() if ext in known
            )
            already_live = self._live_copies(
                [k for k, r in copies.items() if r.external_id in known]
            )
        activity_of = {**known, **created}
        rows = [
            (member_id, item_id, activity_of[r.external_id], r.folder)
            for (member_id, item_id), r in copies.items()
            if r.external_id in activity_of
        ]
        bulk_insert(self.session, CrmEmailCopy, _COPY_COLUMNS, rows, _COPY_REFRESH)
        result.linked = len(rows) - len(already_live)
        # New emails, and known ones a mailbox now holds too (its user is related to them).
        self._changed(
            [
                *created.values(),
                *(
                    known[r.external_id]
                    for k, r in copies.items()
                    if r.external_id in known and k not in already_live
                ),
            ]
        )
        return result

    def _live_copies(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of the (member, item id) ``keys`` already linked and not set aside."""
        by_member: dict[str, list[str]] = {}
        for member_id, item_id in keys:
            by_member.setdefault(member_id, []).append(item_id)
        live: set[tuple[str, str]] = set()
        for member_id, item_ids in by_member.items():
            for chunk in _chunks(sorted(item_ids)):
                live.update(
                    (member_id, item_id)
                    for item_id in self.session.scalars(
                        select(CrmEmailCopy.graph_item_id).where(
                            CrmEmailCopy.member_id == member_id,
                            CrmEmailCopy.graph_item_id.in_(chunk),
                            CrmEmailCopy.removed_at.is_(None),
                        )
                    )
                )
        return live

    def _lock_activities(self, activity_ids: Sequence[str]) -> None:
        """Lock these activities' rows until commit (PostgreSQL; in increasing id order, so
        two lockers never deadlock). Linking copies and settling them lock the emails they
        touch, so "no mailbox holds a copy any more" is decided on committed copies. The
        lock leaves foreign-key checks alone (``FOR NO KEY UPDATE``): logging people and
        accounts of a locked email does not wait. SQLite needs nothing: its writers take
        turns, and both callers write before they read."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        for chunk in _chunks(sorted(activity_ids)):
            self.session.execute(
                select(CrmActivity.id)
                .where(CrmActivity.id.in_(chunk))
                .order_by(CrmActivity.id)
                .with_for_update(key_share=True)
            )

    def set_aside_email_copies(
        self, member_id: str, graph_item_ids: Collection[str], *, folder: str | None = None
    ) -> None:
        now = utcnow()
        for chunk in _chunks(sorted(set(graph_item_ids))):
            stmt = update(CrmEmailCopy).where(
                CrmEmailCopy.member_id == member_id,
                CrmEmailCopy.graph_item_id.in_(chunk),
                CrmEmailCopy.removed_at.is_(None),
            )
            if folder is not None:
                stmt = stmt.where(CrmEmailCopy.folder == folder)
            self.session.execute(stmt.values(removed_at=now))

    def settle_email_copies(self, member_id: str, *, delete: bool) -> int:
        set_aside = and_(CrmEmailCopy.member_id == member_id, CrmEmailCopy.removed_at.is_not(None))
        affected = sorted(
            set(self.session.scalars(select(CrmEmailCopy.activity_id).where(set_aside)))
        )
        if not affected:
            return 0
        if delete:
            self._lock_activities(affected)
        self.session.execute(sa_delete(CrmEmailCopy).where(set_aside))
        if not delete:
            return 0
        held: set[str] = set()
        for chunk in _chunks(affected):
            held.update(
                self.session.scalars(
                    select(CrmEmailCopy.activity_id)
                    .where(CrmEmailCopy.activity_id.in_(chunk))
                    .distinct()
                )
            )
        orphans = [aid for aid in affected if aid not in held]
        self._changed(orphans)
        now = utcnow()
        deleted = 0
        for chunk in _chunks(orphans):
            result = self.session.execute(
                update(CrmActivity)
                .where(CrmActivity.id.in_(chunk), CrmActivity.deleted_at.is_(None))
                .values(deleted_at=now, modified_at=now)
            )
            deleted += cast(CursorResult[Any], result).rowcount
        return deleted

    def _insert_emails(
        self, merged: dict[str, EmailRecord]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Insert every email whose external id is new (``ON CONFLICT DO NOTHING``). Returns
        external id → activity id of the rows this call created, and of those that were
        already there (logged earlier, or by another mailbox at the same moment). When
        every row went in (a first sync), no lookup is needed at all."""
        now = utcnow()
        ids = ordered_ids(len(merged))
        rows = []
        for aid, (ext, r) in zip(ids, merged.items(), strict=True):
            rows.append(
                (
                    aid,
                    self.organization_id,
                    ActivityKind.EMAIL,
                    ext,
                    bounded_subject(r.subject),
                    r.body,
                    r.body_type,
                    r.headers_only,
                    r.occurred_at,
                    r.from_address,
                    _bounded_names(r.participants),
                    r.conversation_id,
                    [a.as_json() for a in r.attachments],
                    r.member_id,
                    now,
                    now,
                    *_EMAIL_CONSTANTS,
                )
            )
        inserted = bulk_insert(self.session, CrmActivity, _EMAIL_COLUMNS, rows)
        mine = dict(zip(merged, ids, strict=True))
        if inserted == len(rows):
            return mine, {}
        stored = self._activity_ids(ActivityKind.EMAIL, merged)
        created = {ext: aid for ext, aid in mine.items() if stored.get(ext) == aid}
        known = {ext: aid for ext, aid in stored.items() if ext not in created}
        return created, known

    # -- events and tasks ------------------------------------------------------------------
    def _upsert_two_way(
        self,
        kind: ActivityKind,
        records: Sequence[EventRecord] | Sequence[TaskRecord],
        values: Any,
    ) -> UpsertResult:
        result = UpsertResult()
        merged: dict[str, EventRecord | TaskRecord] = {r.external_id: r for r in records}
        if not merged:
            return result
        known = self._activity_ids(kind, merged)
        fresh: set[str] = set()
        for ext, record in merged.items():
            fields = values(record)
            if ext in known:
                self.session.execute(
                    update(CrmActivity)
                    .where(CrmActivity.id == known[ext])
                    .values(**fields, modified_at=record.modified_at, deleted_at=None)
                )
                result.updated += 1
            else:
                aid = new_id()
                self._insert_ignore(
                    CrmActivity,
                    [
                        {
                            "id": aid,
                            "organization_id": self.organization_id,
                            "kind": kind,
                            "external_id": ext,
                            "owner_member_id": record.member_id,
                            "modified_at": record.modified_at,
                            "change_seq": 0,
                            "created_at": utcnow(),
                            **fields,
                        }
                    ],
                )
                fresh.add(aid)
        known = self._activity_ids(kind, merged)
        fresh &= set(known.values())
        result.created = len(fresh)
        self._changed(known.values())
        if kind == ActivityKind.EVENT:
            self._link_who_and_what(
                (
                    (known[ext], r.people, r.account_ids)
                    for ext, r in merged.items()
                    if isinstance(r, EventRecord) and ext in known
                )
            )
        seqs: dict[str, int] = {}
        for chunk in _chunks(sorted(set(known.values()))):
            rows = self.session.execute(
                select(CrmActivity.id, CrmActivity.change_seq).where(CrmActivity.id.in_(chunk))
            )
            seqs.update({aid: seq for aid, seq in rows})
        result.linked = self._link_members(
            [
                {
                    "activity_id": known[ext],
                    "member_id": r.member_id,
                    "graph_item_id": r.graph_item_id,
                    "change_key": r.change_key,
                    "folder": "",
                    # Microsoft's version now holds: CRM edits up to here are reconciled.
                    "pushed_seq": seqs.get(known[ext], 0),
                }
                for ext, r in merged.items()
                if ext in known
            ]
        )
        return result

    def upsert_events(self, records: Sequence[EventRecord]) -> UpsertResult:
        def values(r: Any) -> dict[str, Any]:
            return {
                "subject": bounded_subject(r.subject),
                "body": r.body,
                "body_type": "text",
                "occurred_at": r.starts_at,
                "starts_at": r.starts_at,
                "ends_at": r.ends_at,
                "is_all_day": r.is_all_day,
                "location": r.location[:500],
                "is_cancelled": r.is_cancelled,
                "series_key": r.series_key,
                "from_address": r.organizer_address,
                "participants": [p.as_json() for p in _bounded_names(r.participants)],
            }

        return self._upsert_two_way(ActivityKind.EVENT, records, values)

    def upsert_tasks(self, records: Sequence[TaskRecord]) -> UpsertResult:
        def values(r: Any) -> dict[str, Any]:
            return {
                "subject": bounded_subject(r.title),
                "body": r.notes,
                "body_type": "text",
                "occurred_at": r.due_at,
                "due_at": r.due_at,
                "status": r.status,
                "importance": r.importance,
                "completed_at": r.completed_at,
            }

        return self._upsert_two_way(ActivityKind.TASK, records, values)

    def linked_items(
        self, kind: ActivityKind, member_id: str, graph_item_ids: Collection[str]
    ) -> dict[str, LinkedItem]:
        found: dict[str, LinkedItem] = {}
        for chunk in _chunks(sorted(set(graph_item_ids))):
            rows = self.session.execute(
                select(
                    CrmActivityMember.graph_item_id,
                    CrmActivity.id,
                    CrmActivityMember.change_key,
                    CrmActivity.modified_at,
                    CrmActivity.change_seq,
                    CrmActivityMember.pushed_seq,
                )
                .join(CrmActivity, CrmActivity.id == CrmActivityMember.activity_id)
                .where(
                    CrmActivityMember.member_id == member_id,
                    CrmActivityMember.graph_item_id.in_(chunk),
                    CrmActivity.kind == kind,
                )
            )
            for item_id, aid, ck, modified, seq, pushed in rows:
                if item_id is None:
                    continue
                found[item_id] = LinkedItem(aid, ck, modified, crm_pending=seq > pushed)
        return found

    def adopt_tasks(
        self, member_id: str, records: Sequence[TaskRecord], keep: Collection[str]
    ) -> int:
        if not records:
            return 0
        rows = self.session.execute(
            select(
                CrmActivity.id,
                CrmActivity.subject,
                CrmActivity.due_at,
                CrmActivityMember.graph_item_id,
            )
            .join(CrmActivity, CrmActivity.id == CrmActivityMember.activity_id)
            .where(
                CrmActivityMember.member_id == member_id,
                CrmActivityMember.removed_at.is_(None),
                CrmActivity.kind == ActivityKind.TASK,
                CrmActivity.deleted_at.is_(None),
            )
            .order_by(CrmActivity.created_at, CrmActivity.id)
        )
        candidates: dict[tuple[str, Any], list[str]] = {}
        for aid, subject, due, item_id in rows:
            if item_id is not None and item_id not in keep:
                candidates.setdefault((subject, due.date() if due else None), []).append(aid)
        adopted = 0
        for record in records:
            key = (bounded_subject(record.title), record.due_at.date() if record.due_at else None)
            found = candidates.get(key)
            if not found:
                continue
            aid = found.pop(0)
            self.session.execute(
                update(CrmActivity)
                .where(CrmActivity.id == aid)
                .values(external_id=record.external_id)
            )
            self.session.execute(
                update(CrmActivityMember)
                .where(
                    CrmActivityMember.activity_id == aid, CrmActivityMember.member_id == member_id
                )
                .values(graph_item_id=record.graph_item_id, change_key=None)
            )
            adopted += 1
        return adopted

    def linked_item_ids(
        self,
        kind: ActivityKind,
        member_id: str,
        *,
        folder: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> set[str]:
        ids: set[str] = set()
        link: type[CrmEmailCopy] | type[CrmActivityMember] = (
            CrmEmailCopy if kind == ActivityKind.EMAIL else CrmActivityMember
        )
        stmt = (
            select(link.graph_item_id)
            .join(CrmActivity, CrmActivity.id == link.activity_id)
            .where(
                link.member_id == member_id,
                link.graph_item_id.is_not(None),
                link.removed_at.is_(None),
                CrmActivity.kind == kind,
            )
        )
        if folder is not None:
            stmt = stmt.where(link.folder == folder)
        if since is not None:
            stmt = stmt.where(CrmActivity.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(CrmActivity.occurred_at < until)
        for item_id in self.session.scalars(stmt):
            if item_id is not None:
                ids.add(item_id)
        return ids

    def remove_items(
        self,
        kind: ActivityKind,
        member_id: str,
        graph_item_ids: Collection[str],
        *,
        delete: bool,
        folder: str | None = None,
    ) -> int:
        if kind == ActivityKind.EMAIL:
            self.set_aside_email_copies(member_id, graph_item_ids, folder=folder)
            return self.settle_email_copies(member_id, delete=delete)
        ids = sorted(set(graph_item_ids))
        affected: set[str] = set()
        for chunk in _chunks(ids):
            stmt = (
                select(CrmActivityMember.activity_id)
                .join(CrmActivity, CrmActivity.id == CrmActivityMember.activity_id)
                .where(
                    CrmActivityMember.member_id == member_id,
                    CrmActivityMember.graph_item_id.in_(chunk),
                    CrmActivity.kind == kind,
                )
            )
            if folder is not None:
                stmt = stmt.where(CrmActivityMember.folder == folder)
            affected |= set(self.session.scalars(stmt))
        if not affected:
            return 0
        now = utcnow()
        for chunk in _chunks(sorted(affected)):
            self.session.execute(
                update(CrmActivityMember)
                .where(
                    CrmActivityMember.member_id == member_id,
                    CrmActivityMember.activity_id.in_(chunk),
                )
                .values(removed_at=now)
            )
        if not delete:
            return 0
        still_held = set(
            self.session.scalars(
                select(CrmActivityMember.activity_id).where(
                    CrmActivityMember.activity_id.in_(sorted(affected)),
                    CrmActivityMember.removed_at.is_(None),
                )
            )
        )
        orphans = sorted(affected - still_held)
        self._changed(orphans)
        for chunk in _chunks(orphans):
            self.session.execute(
                update(CrmActivity)
                .where(CrmActivity.id.in_(chunk))
                .values(deleted_at=now, modified_at=now)
            )
        return len(orphans)

    # -- CRM → Microsoft -------------------------------------------------------------------
    def changes_since(
        self, kind: ActivityKind, member_id: str, cursor: str | None, limit: int = 200
    ) -> tuple[list[OutboundChange], str | None]:
        after = int(cursor) if cursor else 0
        link = CrmActivityMember
        rows = self.session.execute(
            select(CrmActivity, link.graph_item_id, link.pushed_seq)
            .outerjoin(link, and_(link.activity_id == CrmActivity.id, link.member_id == member_id))
            .where(
                CrmActivity.organization_id == self.organization_id,
                CrmActivity.kind == kind,
                CrmActivity.change_seq > after,
                # Spelled as in the partial index's WHERE, so the database can use it.
                CrmActivity.change_seq > literal_column("0"),
                or_(link.member_id.is_not(None), CrmActivity.owner_member_id == member_id),
            )
            .order_by(CrmActivity.change_seq)
            .limit(limit)
        ).all()
        changes: list[OutboundChange] = []
        last = after
        for activity, item_id, pushed in rows:
            last = max(last, activity.change_seq)
            if pushed is not None and pushed >= activity.change_seq:
                continue
            if activity.deleted_at is not None and item_id is None:
                continue
            changes.append(
                OutboundChange(
                    activity_id=activity.id,
                    kind=kind,
                    change_seq=activity.change_seq,
                    deleted=activity.deleted_at is not None,
                    graph_item_id=item_id,
                    subject=activity.subject,
                    body=activity.body,
                    starts_at=activity.starts_at,
                    ends_at=activity.ends_at,
                    is_all_day=activity.is_all_day,
                    location=activity.location,
                    attendees=[
                        Participant(
                            p.get("address", ""), p.get("name", ""), p.get("role", "attendee")
                        )
                        for p in activity.participants or []
                        if p.get("role") not in ("organizer",)
                    ],
                    send_invitations=activity.send_invitations,
                    due_at=activity.due_at,
                    status=activity.status,
                    importance=activity.importance,
                    modified_at=activity.modified_at,
                )
            )
        return changes, (str(last) if rows else cursor)

    def record_pushed(
        self, kind: ActivityKind, member_id: str, results: Sequence[PushResult]
    ) -> None:
        for result in results:
            if result.graph_item_id is not None:
                self._drop_pulled_copies(kind, member_id, result)
            if result.external_id:
                self.session.execute(
                    update(CrmActivity)
                    .where(CrmActivity.id == result.activity_id)
                    .values(external_id=result.external_id)
                )
            if result.graph_item_id is None:
                self.session.execute(
                    update(CrmActivityMember)
                    .where(
                        CrmActivityMember.activity_id == result.activity_id,
                        CrmActivityMember.member_id == member_id,
                    )
                    .values(graph_item_id=None, removed_at=utcnow(), pushed_seq=result.change_seq)
                )
                continue
            row: dict[str, Any] = {
                "activity_id": result.activity_id,
                "member_id": member_id,
                "graph_item_id": result.graph_item_id,
                "folder": "",
                "pushed_seq": result.change_seq,
            }
            if result.change_key is not None:
                row["change_key"] = result.change_key
            self._link_members([row])

    def _drop_pulled_copies(self, kind: ActivityKind, member_id: str, result: PushResult) -> None:
        """A create whose record was lost (the process died after Microsoft answered) is
        found again by its retry (``transactionId``, or the stamp over EWS); meanwhile a pull
        may have logged the item as a new activity of its own. That copy is deleted (its
        external id released) so the CRM activity the item was made for stays the only one."""
        copies = sorted(
            set(
                self.session.scalars(
                    select(CrmActivityMember.activity_id)
                    .join(CrmActivity, CrmActivity.id == CrmActivityMember.activity_id)
                    .where(
                        CrmActivityMember.member_id == member_id,
                        CrmActivityMember.graph_item_id == result.graph_item_id,
                        CrmActivityMember.activity_id != result.activity_id,
                        CrmActivity.kind == kind,
                    )
                )
            )
        )
        if not copies:
            return
        now = utcnow()
        self.session.execute(
            update(CrmActivityMember)
            .where(CrmActivityMember.activity_id.in_(copies))
            .values(graph_item_id=None, removed_at=now)
        )
        self.session.execute(
            update(CrmActivity)
            .where(CrmActivity.id.in_(copies))
            .values(external_id=CrmActivity.id, deleted_at=now, modified_at=now)
        )
        self._changed(copies)

    # -- CRM-side edits (the CRM's own UI/API; they feed ``changes_since``) ----------------
    def crm_save_event(
        self,
        *,
        owner_member_id: str,
        subject: str,
        starts_at: datetime,
        ends_at: datetime,
        is_all_day: bool = False,
        attendees: Sequence[Participant] = (),
        location: str = "",
        body: str = "",
        send_invitations: bool = False,
        activity_id: str | None = None,
        modified_at: datetime | None = None,
    ) -> str:
        """Create or edit a meeting in the CRM; it goes to the owner's calendar on next sync.
        ``modified_at`` is when the edit was made (default now): the newest change wins
        against Outlook's, so an edit made elsewhere (in Salesforce) keeps its own time."""
        values: dict[str, Any] = {
            "subject": bounded_subject(subject),
            "starts_at": starts_at,
            "ends_at": ends_at,
            "is_all_day": is_all_day,
            "occurred_at": starts_at,
            "location": location,
            "body": body,
            "participants": [p.as_json() for p in _bounded_names(attendees)],
            "send_invitations": send_invitations,
            "modified_at": modified_at or utcnow(),
            "change_seq": self.next_change_seq(),
        }
        return self._crm_save(ActivityKind.EVENT, owner_member_id, activity_id, values)

    def crm_save_task(
        self,
        *,
        owner_member_id: str,
        title: str,
        due_at: datetime | None = None,
        status: str = "notStarted",
        importance: str = "normal",
        notes: str = "",
        activity_id: str | None = None,
        modified_at: datetime | None = None,
    ) -> str:
        """Create or edit a task in the CRM; it goes to the owner's To Do list on next sync
        (``modified_at`` as for ``crm_save_event``)."""
        values: dict[str, Any] = {
            "subject": bounded_subject(title),
            "due_at": due_at,
            "occurred_at": due_at,
            "status": status,
            "importance": importance,
            "body": notes,
            "completed_at": (modified_at or utcnow()) if status == "completed" else None,
            "modified_at": modified_at or utcnow(),
            "change_seq": self.next_change_seq(),
        }
        return self._crm_save(ActivityKind.TASK, owner_member_id, activity_id, values)

    def _crm_save(
        self,
        kind: ActivityKind,
        owner_member_id: str,
        activity_id: str | None,
        values: dict[str, Any],
    ) -> str:
        if activity_id is not None:
            self.session.execute(
                update(CrmActivity)
                .where(
                    CrmActivity.id == activity_id,
                    CrmActivity.organization_id == self.organization_id,
                )
                .values(**values)
            )
            self._changed([activity_id])
            return activity_id
        aid = new_id()
        self.session.add(
            CrmActivity(
                id=aid,
                organization_id=self.organization_id,
                kind=kind,
                external_id=f"crm:{aid}",
                owner_member_id=owner_member_id,
                **values,
            )
        )
        self.session.flush()
        self._changed([aid])
        return aid

    def crm_delete(self, activity_id: str, *, modified_at: datetime | None = None) -> None:
        when = modified_at or utcnow()
        self.session.execute(
            update(CrmActivity)
            .where(
                CrmActivity.id == activity_id, CrmActivity.organization_id == self.organization_id
            )
            .values(deleted_at=when, modified_at=when, change_seq=self.next_change_seq())
        )
        self._changed([activity_id])
