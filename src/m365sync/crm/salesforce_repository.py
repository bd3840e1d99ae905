"""Database access for Salesforce as the CRM: the connection, members' Salesforce users, the
mirror of Salesforce's people, and the writer's ledger.

A repository: it queries and never commits; every query is scoped to one organization.
``queue_activities`` is the one function the embedded store calls (in the sync engine's
transaction), so an activity's change and its place in the writer's queue commit together.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from m365sync.crm.models import (
    ActivityKind,
    CrmAccount,
    CrmActivity,
    CrmActivityMember,
    CrmActivityPerson,
    CrmActivityRecord,
    CrmContact,
    CrmEmailCopy,
    CrmLead,
    CrmOpportunity,
    PersonKind,
    RecordKind,
    SalesforceActivityRecord,
    SalesforceAddressChoice,
    SalesforceConnection,
    SalesforceMirrorCursor,
    SalesforceMirrorRecord,
    SalesforceStatus,
    SalesforceUserLink,
    UserMatch,
    WriteState,
)
from m365sync.db.base import dialect_insert, utcnow
from m365sync.organizations.models import Domain, Member

__all__ = [
    "CHANGES_CURSOR",
    "ActivityFields",
    "DueWrite",
    "SalesforceRepository",
    "queue_activities",
    "writes_to_salesforce",
]

CHUNK = 500
CHANGES_CURSOR = "changes:"
"""Prefix of the changes pull's cursors (``changes:Event``, ``changes:Task``), kept beside
the mirror's own in ``salesforce_mirror_cursors``."""
T = TypeVar("T")
M = TypeVar("M")


class DueWrite(Protocol):
    """The ledger columns a round plans with (a read-only row, not an ORM object: a round
    reads a thousand of them, and the ORM's identity map and attribute machinery cost
    more than the query)."""

    activity_id: str
    version: int
    written_version: int
    sobject: str
    salesforce_id: str | None
    uncertain: bool
    attempts: int
    relations: list[str]


class ActivityFields(Protocol):
    """The activity columns the writer plans a Salesforce record from (a read-only row)."""

    id: str
    kind: str
    external_id: str
    deleted_at: datetime | None
    is_cancelled: bool
    participants: list[dict[str, str]]
    owner_member_id: str | None
    from_address: str | None
    subject: str
    body: str | None
    body_type: str
    occurred_at: datetime | None
    location: str
    starts_at: datetime | None
    ends_at: datetime | None
    is_all_day: bool
    due_at: datetime | None
    status: str
    importance: str
    attachments: list[dict[str, Any]] | None


_DUE_COLUMNS = tuple(
    SalesforceActivityRecord.__table__.c[name] for name in DueWrite.__annotations__
)
_ACTIVITY_COLUMNS = tuple(CrmActivity.__table__.c[name] for name in ActivityFields.__annotations__)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def writes_to_salesforce(session: Session, organization_id: str) -> bool:
    """Whether the organization has a Salesforce connection whose writer should hear of
    every change (connected, or needing attention: nothing is lost meanwhile)."""
    status = session.scalar(
        select(SalesforceConnection.status).where(
            SalesforceConnection.organization_id == organization_id
        )
    )
    return status is not None and status not in (
        SalesforceStatus.PENDING,
        SalesforceStatus.DISCONNECTED,
    )


def queue_activities(session: Session, organization_id: str, activity_ids: Collection[str]) -> None:
    """These activities changed: (re)queue them for the Salesforce writer. A new activity
    gets its ledger row; a known one a new ``version``, back to pending. Rows are written
    in id order, so two transactions queueing the same activities never deadlock."""
    ids = sorted(set(activity_ids))
    if not ids:
        return
    table = SalesforceActivityRecord.__table__
    now = utcnow()
    for chunk in _chunks(ids):
        stmt = dialect_insert(session, SalesforceActivityRecord)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.activity_id],
            set_={
                "version": table.c.version + 1,
                "state": WriteState.PENDING.value,
                "next_attempt_at": None,
                "updated_at": now,
            },
        )
        session.execute(
            stmt,
            [
                {
                    "activity_id": aid,
                    "organization_id": organization_id,
                    "state": WriteState.PENDING.value,
                    "version": 1,
                    "written_version": 0,
                    "sobject": "",
                    "uncertain": False,
                    "relations": [],
                    "attempts": 0,
                    "reason": "",
                    "fix": "",
                    "updated_at": now,
                }
                for aid in chunk
            ],
        )


class SalesforceRepository:
    def __init__(self, session: Session, organization_id: str) -> None:
        self.session = session
        self.organization_id = organization_id

    # -- the connection --------------------------------------------------------------------
    def connection(self) -> SalesforceConnection | None:
        return self.session.scalar(
            select(SalesforceConnection).where(
                SalesforceConnection.organization_id == self.organization_id
            )
        )

    @staticmethod
    def connection_by_state(session: Session, state: str) -> SalesforceConnection | None:
        """The connection whose Connect Salesforce is waiting for this ``state``."""
        if not state:
            return None
        return session.scalar(
            select(SalesforceConnection).where(SalesforceConnection.pending_state == state)
        )

    @staticmethod
    def working_organizations(session: Session) -> list[str]:
        """Organizations whose Salesforce connection works (active, or needing setup)."""
        return list(
            session.scalars(
                select(SalesforceConnection.organization_id)
                .where(
                    SalesforceConnection.status.in_(
                        [SalesforceStatus.ACTIVE, SalesforceStatus.NEEDS_SETUP]
                    )
                )
                .order_by(SalesforceConnection.organization_id)
            )
        )

    def add(self, connection: SalesforceConnection) -> SalesforceConnection:
        self.session.add(connection)
        self.session.flush()
        return connection

    def claim_writer(self, owner: str, until: datetime, now: datetime) -> bool:
        """Take the organization's writer lease (one drain at a time, across processes)."""
        result = self.session.execute(
            update(SalesforceConnection)
            .where(
                SalesforceConnection.organization_id == self.organization_id,
                or_(
                    SalesforceConnection.writer_lease_until.is_(None),
                    SalesforceConnection.writer_lease_until < now,
                    SalesforceConnection.writer_lease_owner == owner,
                ),
            )
            .values(writer_lease_owner=owner, writer_lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def release_writer(self, owner: str) -> None:
        self.session.execute(
            update(SalesforceConnection)
            .where(
                SalesforceConnection.organization_id == self.organization_id,
                SalesforceConnection.writer_lease_owner == owner,
            )
            .values(writer_lease_owner=None, writer_lease_until=None)
            .execution_options(synchronize_session=False)
        )

    # -- members and their Salesforce users ------------------------------------------------
    def members(self) -> list[Member]:
        return list(
            self.session.scalars(
                select(Member)
                .where(Member.organization_id == self.organization_id)
                .order_by(Member.email)
            )
        )

    def member(self, member_id: str) -> Member | None:
        return self.session.scalar(
            select(Member).where(
                Member.organization_id == self.organization_id, Member.id == member_id
            )
        )

    def user_links(self) -> dict[str, SalesforceUserLink]:
        rows = self.session.scalars(
            select(SalesforceUserLink).where(
                SalesforceUserLink.organization_id == self.organization_id
            )
        )
        return {row.member_id: row for row in rows}

    def save_user_link(
        self, member_id: str, user: dict[str, Any], matched_by: UserMatch
    ) -> SalesforceUserLink:
        link = self.session.get(SalesforceUserLink, member_id)
        if link is None:
            link = SalesforceUserLink(member_id=member_id, organization_id=self.organization_id)
            self.session.add(link)
        link.salesforce_user_id = str(user["Id"])
        link.salesforce_username = str(user.get("Username") or "")[:320]
        link.salesforce_name = str(user.get("Name") or "")[:200]
        link.matched_by = matched_by
        self.session.flush()
        return link

    def drop_user_link(self, member_id: str) -> None:
        self.session.execute(
            delete(SalesforceUserLink).where(
                SalesforceUserLink.organization_id == self.organization_id,
                SalesforceUserLink.member_id == member_id,
            )
        )

    def _rows_by(
        self, model: type[M], key: str, values: Collection[str], *where: ColumnElement[bool]
    ) -> dict[str, M]:
        """This organization's ``model`` rows whose ``key`` column is one of ``values``
        (and that match ``where``), by that column's value; looked up in chunks, so any
        number of values stays within the databases' parameter limits."""
        table: Any = model
        column = getattr(table, key)
        found: dict[str, M] = {}
        for chunk in _chunks(sorted(set(values))):
            for row in self.session.scalars(
                select(table).where(
                    table.organization_id == self.organization_id, column.in_(chunk), *where
                )
            ):
                value = getattr(row, key)
                if value is not None:
                    found[value] = row
        return found

    # -- the mirror of Salesforce's people -------------------------------------------------
    def mirror_rows(self, salesforce_ids: Collection[str]) -> dict[str, SalesforceMirrorRecord]:
        return self._rows_by(SalesforceMirrorRecord, "salesforce_id", salesforce_ids)

    def mirror_rows_of(self, sobject: str) -> list[SalesforceMirrorRecord]:
        return list(
            self.session.scalars(
                select(SalesforceMirrorRecord).where(
                    SalesforceMirrorRecord.organization_id == self.organization_id,
                    SalesforceMirrorRecord.sobject == sobject,
                )
            )
        )

    def mirror_rows_for_local(self, local_ids: Collection[str]) -> list[SalesforceMirrorRecord]:
        """Mirror rows matched through these local rows, oldest Salesforce record first."""
        found: list[SalesforceMirrorRecord] = []
        for chunk in _chunks(sorted(set(local_ids))):
            found.extend(
                self.session.scalars(
                    select(SalesforceMirrorRecord).where(
                        SalesforceMirrorRecord.organization_id == self.organization_id,
                        SalesforceMirrorRecord.local_id.in_(chunk),
                    )
                )
            )
        found.sort(key=lambda r: (r.created_at, r.salesforce_id))
        return found

    def add_mirror_row(self, row: SalesforceMirrorRecord) -> None:
        self.session.add(row)

    def delete_mirror_row(self, row: SalesforceMirrorRecord) -> None:
        self.session.delete(row)

    def people_by_email(self, model: Any, emails: Collection[str]) -> dict[str, Any]:
        """Local contacts (``CrmContact``) or leads (``CrmLead``) by address."""
        return self._rows_by(model, "email", [e for e in emails if e])

    def local_row(self, model: Any, local_id: str) -> Any:
        row = self.session.get(model, local_id)
        return row if row is not None and row.organization_id == self.organization_id else None

    def add_local(self, row: CrmAccount | CrmContact | CrmLead | CrmOpportunity) -> None:
        self.session.add(row)
        self.session.flush()

    def delete_local(self, row: CrmAccount | CrmContact | CrmLead | CrmOpportunity) -> None:
        self.session.delete(row)
        self.session.flush()

    def cursor(self, sobject: str) -> SalesforceMirrorCursor | None:
        return self.session.get(SalesforceMirrorCursor, (self.organization_id, sobject))

    def save_cursor(
        self, sobject: str, *, updated_until: datetime, deleted_until: datetime, loaded: bool
    ) -> None:
        row = self.cursor(sobject)
        if row is None:
            row = SalesforceMirrorCursor(
                organization_id=self.organization_id,
                sobject=sobject,
                updated_until=updated_until,
                deleted_until=deleted_until,
            )
            self.session.add(row)
        row.updated_until = updated_until
        row.deleted_until = deleted_until
        if loaded:
            row.loaded_at = utcnow()
        self.session.flush()

    def forget_mirror(self) -> None:
        """Forget how far the mirror read (the next run loads everything again)."""
        self.session.execute(
            delete(SalesforceMirrorCursor).where(
                SalesforceMirrorCursor.organization_id == self.organization_id
            )
        )

    # -- the writer's ledger ---------------------------------------------------------------
    def queue(self, activity_ids: Collection[str]) -> None:
        queue_activities(self.session, self.organization_id, activity_ids)

    def queue_everything(self) -> int:
        """Queue every live activity of the organization that has no ledger row yet (a new
        connection: what the store already holds goes to Salesforce too)."""
        known = select(SalesforceActivityRecord.activity_id).where(
            SalesforceActivityRecord.organization_id == self.organization_id
        )
        ids = list(
            self.session.scalars(
                select(CrmActivity.id).where(
                    CrmActivity.organization_id == self.organization_id,
                    CrmActivity.deleted_at.is_(None),
                    CrmActivity.id.not_in(known),
                )
            )
        )
        self.queue(ids)
        return len(ids)

    def due(self, now: datetime, limit: int) -> list[DueWrite]:
        """Pending writes whose time has come: never tried first, then retries by time,
        ties by activity id. Read as two queries (never tried, then retries), each in the
        order of ``ix_salesforce_activity_records_due``, so the database reads the first
        ``limit`` rows of the index instead of sorting every pending row (``NULLS FIRST``
        in one query would not match the index on PostgreSQL)."""
        pending = (
            SalesforceActivityRecord.organization_id == self.organization_id,
            SalesforceActivityRecord.state == WriteState.PENDING,
        )
        found: list[DueWrite] = [
            cast(DueWrite, row)
            for row in self.session.execute(
                select(*_DUE_COLUMNS)
                .where(*pending, SalesforceActivityRecord.next_attempt_at.is_(None))
                .order_by(SalesforceActivityRecord.activity_id)
                .limit(limit)
            )
        ]
        if len(found) < limit:
            found.extend(
                cast(DueWrite, row)
                for row in self.session.execute(
                    select(*_DUE_COLUMNS)
                    .where(*pending, SalesforceActivityRecord.next_attempt_at <= now)
                    .order_by(
                        SalesforceActivityRecord.next_attempt_at,
                        SalesforceActivityRecord.activity_id,
                    )
                    .limit(limit - len(found))
                )
            )
        return found

    def mark_uncertain(self, activity_ids: Collection[str]) -> None:
        """About to be sent: until the answers are recorded, Salesforce may hold them or
        not. Rows are locked in id order first (PostgreSQL), like ``queue_activities``."""
        ids = sorted(set(activity_ids))
        for chunk in _chunks(ids):
            self.session.execute(
                select(SalesforceActivityRecord.activity_id)
                .where(SalesforceActivityRecord.activity_id.in_(chunk))
                .order_by(SalesforceActivityRecord.activity_id)
                .with_for_update()
            )
            self.session.execute(
                update(SalesforceActivityRecord)
                .where(SalesforceActivityRecord.activity_id.in_(chunk))
                .values(uncertain=True)
                .execution_options(synchronize_session=False)
            )

    def ledger(self, activity_ids: Collection[str]) -> dict[str, SalesforceActivityRecord]:
        return self._rows_by(SalesforceActivityRecord, "activity_id", activity_ids)

    def ledger_by_salesforce_id(
        self, salesforce_ids: Collection[str]
    ) -> dict[str, SalesforceActivityRecord]:
        """The ledger rows of these Salesforce records (records m365sync wrote or adopted)."""
        return self._rows_by(SalesforceActivityRecord, "salesforce_id", salesforce_ids)

    def activities_by_external_id(
        self, kind: str, external_ids: Collection[str]
    ) -> dict[str, CrmActivity]:
        return self._rows_by(CrmActivity, "external_id", external_ids, CrmActivity.kind == kind)

    def adopt(self, activity_id: str, sobject: str, salesforce_id: str) -> None:
        """Record that Salesforce already holds this activity as ``salesforce_id`` (it came
        from there): synced, nothing to write back."""
        now = utcnow()
        stmt = dialect_insert(self.session, SalesforceActivityRecord)
        table = SalesforceActivityRecord.__table__
        values = {
            "state": WriteState.SYNCED.value,
            "sobject": sobject,
            "salesforce_id": salesforce_id,
            "synced_at": now,
            "updated_at": now,
        }
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.activity_id],
                set_={**values, "written_version": table.c.version},
            ),
            [
                {
                    "activity_id": activity_id,
                    "organization_id": self.organization_id,
                    "version": 1,
                    "written_version": 1,
                    "uncertain": False,
                    "relations": [],
                    "attempts": 0,
                    "reason": "",
                    "fix": "",
                    **values,
                }
            ],
        )

    def forget_salesforce_record(self, activity_id: str, *, keep_pending: bool = False) -> None:
        """The activity's Salesforce record was deleted there: nothing is left to write
        (``keep_pending``: the local activity changed since, and is written again as a new
        record)."""
        values: dict[str, Any] = {"salesforce_id": None, "relations": [], "updated_at": utcnow()}
        if keep_pending:
            values.update(state=WriteState.PENDING, uncertain=False)
        else:
            values.update(
                state=WriteState.SYNCED,
                written_version=SalesforceActivityRecord.version,
                next_attempt_at=None,
            )
        self.session.execute(
            update(SalesforceActivityRecord)
            .where(
                SalesforceActivityRecord.organization_id == self.organization_id,
                SalesforceActivityRecord.activity_id == activity_id,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def ledger_counts(self) -> dict[WriteState, int]:
        rows = self.session.execute(
            select(SalesforceActivityRecord.state, func.count())
            .where(SalesforceActivityRecord.organization_id == self.organization_id)
            .group_by(SalesforceActivityRecord.state)
        )
        return {WriteState(state): int(count) for state, count in rows}

    def parked(self, limit: int = 100) -> list[SalesforceActivityRecord]:
        return list(
            self.session.scalars(
                select(SalesforceActivityRecord)
                .where(
                    SalesforceActivityRecord.organization_id == self.organization_id,
                    SalesforceActivityRecord.state == WriteState.PARKED,
                )
                .order_by(SalesforceActivityRecord.updated_at.desc())
                .limit(limit)
            )
        )

    def retry_unmatched_events(self) -> int:
        """Meetings that waited as unmatched are written again (Leads may now be made)."""
        events = select(CrmActivity.id).where(
            CrmActivity.organization_id == self.organization_id,
            CrmActivity.kind == ActivityKind.EVENT,
        )
        result = self.session.execute(
            update(SalesforceActivityRecord)
            .where(
                SalesforceActivityRecord.organization_id == self.organization_id,
                SalesforceActivityRecord.state == WriteState.UNMATCHED,
                SalesforceActivityRecord.activity_id.in_(events),
            )
            .values(state=WriteState.PENDING, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def unmirrored_leads(self, activity_ids: Collection[str]) -> dict[str, CrmLead]:
        """Local leads of these activities that no Salesforce Lead is mirrored into (added
        by m365sync: a booked meeting's unknown invitee), by local id."""
        people = self.activity_people(activity_ids)
        leads = {pid for pairs in people.values() for kind, pid in pairs if kind == PersonKind.LEAD}
        mirrored = {row.local_id for row in self.mirror_rows_for_local(leads)}
        return self._rows_by(CrmLead, "id", leads - mirrored)

    # -- the unresolved queue ---------------------------------------------------------------
    def org_domains(self) -> set[str]:
        return {
            name.lower()
            for name in self.session.scalars(
                select(Domain.name).where(Domain.organization_id == self.organization_id)
            )
        }

    def choices(self, addresses: Collection[str]) -> dict[str, SalesforceAddressChoice]:
        return self._rows_by(SalesforceAddressChoice, "address", addresses)

    def save_choice(self, choice: SalesforceAddressChoice) -> None:
        self.session.merge(choice)
        self.session.flush()

    def unmatched_held_by(self, member_id: str, limit: int) -> list[CrmActivity]:
        """Emails and meetings the member holds (owns, or has in a mailbox or calendar) that
        the writer found nothing in Salesforce to relate to, newest first."""
        copies = select(CrmEmailCopy.activity_id).where(
            CrmEmailCopy.member_id == member_id, CrmEmailCopy.removed_at.is_(None)
        )
        calendars = select(CrmActivityMember.activity_id).where(
            CrmActivityMember.member_id == member_id, CrmActivityMember.removed_at.is_(None)
        )
        return list(
            self.session.scalars(
                select(CrmActivity)
                .join(
                    SalesforceActivityRecord,
                    SalesforceActivityRecord.activity_id == CrmActivity.id,
                )
                .where(
                    SalesforceActivityRecord.organization_id == self.organization_id,
                    SalesforceActivityRecord.state == WriteState.UNMATCHED,
                    CrmActivity.kind.in_([ActivityKind.EMAIL, ActivityKind.EVENT]),
                    CrmActivity.deleted_at.is_(None),
                    or_(
                        CrmActivity.owner_member_id == member_id,
                        CrmActivity.id.in_(copies),
                        CrmActivity.id.in_(calendars),
                    ),
                )
                .order_by(CrmActivity.occurred_at.desc(), CrmActivity.id)
                .limit(limit)
            )
        )

    def requeue_unmatched_with(self, address: str) -> int:
        """Unmatched emails and meetings involving ``address`` go back to the writer (a rep
        decided what the address is)."""
        wanted: list[str] = []
        rows = self.session.execute(
            select(CrmActivity.id, CrmActivity.participants, CrmActivity.from_address)
            .join(
                SalesforceActivityRecord,
                SalesforceActivityRecord.activity_id == CrmActivity.id,
            )
            .where(
                SalesforceActivityRecord.organization_id == self.organization_id,
                SalesforceActivityRecord.state == WriteState.UNMATCHED,
            )
        )
        for activity_id, participants, sender in rows:
            addresses = {str(p.get("address") or "").lower() for p in participants or []}
            if address in addresses or (sender or "").lower() == address:
                wanted.append(activity_id)
        for chunk in _chunks(sorted(wanted)):
            self.session.execute(
                update(SalesforceActivityRecord)
                .where(SalesforceActivityRecord.activity_id.in_(chunk))
                .values(state=WriteState.PENDING, next_attempt_at=None, reason="")
                .execution_options(synchronize_session=False)
            )
        return len(wanted)

    def search_people_and_records(self, text: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Mirrored Contacts, Leads, Accounts and open Opportunities whose name or address
        contains ``text``: (object, Salesforce id, label, local id)."""
        pattern = f"%{text.strip()}%"
        found: list[tuple[str, str, str, str]] = []
        mirror = SalesforceMirrorRecord
        searches: list[tuple[str, Any, Any]] = [
            (
                "Contact",
                select(
                    CrmContact.id, CrmContact.first_name, CrmContact.last_name, CrmContact.email
                ),
                or_(
                    CrmContact.email.ilike(pattern),
                    CrmContact.first_name.ilike(pattern),
                    CrmContact.last_name.ilike(pattern),
                ),
            ),
            (
                "Lead",
                select(CrmLead.id, CrmLead.first_name, CrmLead.last_name, CrmLead.email),
                or_(
                    CrmLead.email.ilike(pattern),
                    CrmLead.first_name.ilike(pattern),
                    CrmLead.last_name.ilike(pattern),
                    CrmLead.company.ilike(pattern),
                ),
            ),
            ("Account", select(CrmAccount.id, CrmAccount.name), CrmAccount.name.ilike(pattern)),
            (
                "Opportunity",
                select(CrmOpportunity.id, CrmOpportunity.name),
                CrmOpportunity.name.ilike(pattern),
            ),
        ]
        for sobject, query, condition in searches:
            table = query.get_final_froms()[0]
            rows = self.session.execute(
                query.add_columns(mirror.salesforce_id)
                .join(
                    mirror,
                    (mirror.local_id == table.c.id)
                    & (mirror.organization_id == self.organization_id)
                    & (mirror.sobject == sobject),
                )
                .where(table.c.organization_id == self.organization_id, condition)
                .order_by(mirror.created_at)
                .limit(limit)
            )
            for row in rows:
                local_id, *names, salesforce_id = row
                if len(names) == 3:
                    first, last, email = names
                    label = f"{(first + ' ' + last).strip() or email} <{email}>"
                else:
                    label = str(names[0])
                found.append((sobject, salesforce_id, label, local_id))
        return found[: limit * 2]

    def mirror_row(self, salesforce_id: str) -> SalesforceMirrorRecord | None:
        return self.session.get(SalesforceMirrorRecord, (self.organization_id, salesforce_id))

    def retry_parked(self, activity_ids: Collection[str] | None = None) -> int:
        """Parked records (all, or those of ``activity_ids``) back to pending, due now."""
        chosen = (
            SalesforceActivityRecord.activity_id.in_(sorted(set(activity_ids)))
            if activity_ids is not None
            else SalesforceActivityRecord.activity_id.is_not(None)
        )
        result = self.session.execute(
            update(SalesforceActivityRecord)
            .where(
                SalesforceActivityRecord.organization_id == self.organization_id,
                SalesforceActivityRecord.state == WriteState.PARKED,
                chosen,
            )
            .values(state=WriteState.PENDING, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def activity_records(self, activity_ids: Collection[str]) -> dict[str, CrmActivity]:
        """The activities themselves, by id: for changing them (the changes pull), where the
        writer's planning reads only ``activities``' columns."""
        return self._rows_by(CrmActivity, "id", activity_ids)

    def activities(self, activity_ids: Collection[str]) -> dict[str, ActivityFields]:
        """The activities' planning columns (see ``ActivityFields``), by id."""
        found: dict[str, ActivityFields] = {}
        for chunk in _chunks(sorted(set(activity_ids))):
            for row in self.session.execute(
                select(*_ACTIVITY_COLUMNS).where(
                    CrmActivity.organization_id == self.organization_id,
                    CrmActivity.id.in_(chunk),
                )
            ):
                found[row.id] = cast(ActivityFields, row)
        return found

    def activity_people(self, activity_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        """Activity id → its (person kind, local person id) links."""
        found: dict[str, list[tuple[str, str]]] = {}
        for chunk in _chunks(sorted(set(activity_ids))):
            for aid, kind, pid in self.session.execute(
                select(
                    CrmActivityPerson.activity_id,
                    CrmActivityPerson.person_kind,
                    CrmActivityPerson.person_id,
                ).where(CrmActivityPerson.activity_id.in_(chunk))
            ):
                found.setdefault(aid, []).append((PersonKind(kind).value, pid))
        return found

    def activity_accounts(self, activity_ids: Collection[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for chunk in _chunks(sorted(set(activity_ids))):
            for aid, record_id in self.session.execute(
                select(CrmActivityRecord.activity_id, CrmActivityRecord.record_id).where(
                    CrmActivityRecord.activity_id.in_(chunk),
                    CrmActivityRecord.record_kind == RecordKind.ACCOUNT,
                )
            ):
                found.setdefault(aid, []).append(record_id)
        return found

    def holders(self, activity_ids: Collection[str]) -> dict[str, set[str]]:
        """Activity id → the members whose mailbox, calendar or To Do list holds it now."""
        found: dict[str, set[str]] = {}
        ordered = sorted(set(activity_ids))
        for link in (CrmEmailCopy, CrmActivityMember):
            for chunk in _chunks(ordered):
                for aid, mid in self.session.execute(
                    select(link.activity_id, link.member_id).where(
                        link.activity_id.in_(chunk), link.removed_at.is_(None)
                    )
                ):
                    found.setdefault(aid, set()).add(mid)
        return found

    def contact_accounts(self, contact_ids: Collection[str]) -> dict[str, str]:
        """Local contact id → its local account id."""
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(contact_ids))):
            for cid, account_id in self.session.execute(
                select(CrmContact.id, CrmContact.account_id).where(
                    CrmContact.organization_id == self.organization_id,
                    CrmContact.id.in_(chunk),
                    CrmContact.account_id.is_not(None),
                )
            ):
                if account_id is not None:
                    found[cid] = account_id
        return found

    def open_opportunities(self, account_ids: Collection[str]) -> dict[str, list[str]]:
        """Local account id → its open opportunities (local ids), oldest first."""
        found: dict[str, list[str]] = {}
        for chunk in _chunks(sorted(set(account_ids))):
            for oid, account_id in self.session.execute(
                select(CrmOpportunity.id, CrmOpportunity.account_id)
                .where(
                    CrmOpportunity.organization_id == self.organization_id,
                    CrmOpportunity.account_id.in_(chunk),
                    CrmOpportunity.is_closed.is_(False),
                )
                .order_by(CrmOpportunity.created_at, CrmOpportunity.id)
            ):
                found.setdefault(account_id, []).append(oid)
        return found

    def forget_writes(self) -> int:
        """Every ledger row back to never written (the org behind the connection is another
        one now): pending, due at once, no Salesforce id, no relations."""
        result = self.session.execute(
            update(SalesforceActivityRecord)
            .where(SalesforceActivityRecord.organization_id == self.organization_id)
            .values(
                state=WriteState.PENDING,
                salesforce_id=None,
                written_version=0,
                sobject="",
                relations=[],
                uncertain=False,
                attempts=0,
                next_attempt_at=None,
                reason="",
                fix="",
                error_code=None,
                synced_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        self.session.execute(
            delete(SalesforceMirrorRecord).where(
                SalesforceMirrorRecord.organization_id == self.organization_id
            )
        )
        self.forget_mirror()
        return int(getattr(result, "rowcount", 0) or 0)

    def waiting(self, limit: int) -> list[tuple[SalesforceActivityRecord, CrmActivity]]:
        """Records that need a look: parked ones, and pending ones that failed before (a
        reason recorded), newest change first, with their activities."""
        rows = self.session.execute(
            select(SalesforceActivityRecord, CrmActivity)
            .join(CrmActivity, CrmActivity.id == SalesforceActivityRecord.activity_id)
            .where(
                SalesforceActivityRecord.organization_id == self.organization_id,
                or_(
                    SalesforceActivityRecord.state == WriteState.PARKED,
                    and_(
                        SalesforceActivityRecord.state == WriteState.PENDING,
                        SalesforceActivityRecord.reason != "",
                    ),
                ),
            )
            .order_by(
                SalesforceActivityRecord.updated_at.desc(), SalesforceActivityRecord.activity_id
            )
            .limit(limit)
        )
        return [(record, activity) for record, activity in rows]

    def written(self, activity_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """Activity id → (Salesforce object, record id) for those Salesforce holds."""
        found: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(sorted(set(activity_ids))):
            for aid, sobject, sid in self.session.execute(
                select(
                    SalesforceActivityRecord.activity_id,
                    SalesforceActivityRecord.sobject,
                    SalesforceActivityRecord.salesforce_id,
                ).where(
                    SalesforceActivityRecord.organization_id == self.organization_id,
                    SalesforceActivityRecord.activity_id.in_(chunk),
                    SalesforceActivityRecord.salesforce_id.is_not(None),
                )
            ):
                if sobject and sid:
                    found[aid] = (sobject, sid)
        return found

    # -- what the workers have to do, across organizations ---------------------------------
    @staticmethod
    def organizations_to_drain(session: Session, now: datetime) -> list[str]:
        """Organizations whose writer has due records and may run now: working connection,
        no pause in force, nobody draining (no live lease), and the mirror loaded once (a
        drain before it would find nobody to relate the activities to)."""
        record = SalesforceActivityRecord
        connection = SalesforceConnection
        due = exists().where(
            record.organization_id == connection.organization_id,
            record.state == WriteState.PENDING,
            or_(record.next_attempt_at.is_(None), record.next_attempt_at <= now),
        )
        return list(
            session.scalars(
                select(connection.organization_id)
                .where(
                    *_may_call(now),
                    or_(
                        connection.writer_lease_until.is_(None), connection.writer_lease_until < now
                    ),
                    _mirrored(),
                    due,
                )
                .order_by(connection.organization_id)
            )
        )

    @staticmethod
    def organizations_to_pull_changes(
        session: Session, now: datetime, every: timedelta
    ) -> list[str]:
        """Organizations whose Events and Tasks changed in Salesforce should be read now:
        working connection, no pause in force, the mirror read once (a pull relates what it
        brings to the members' Salesforce users), and an object whose changes were last
        read (Salesforce's ``latestDateCovered``) more than ``every`` ago, or never."""
        connection = SalesforceConnection
        cursor = SalesforceMirrorCursor
        stale = [
            ~exists().where(
                cursor.organization_id == connection.organization_id,
                cursor.sobject == f"{CHANGES_CURSOR}{sobject}",
                cursor.updated_until >= now - every,
            )
            for sobject in ("Event", "Task")
        ]
        return list(
            session.scalars(
                select(connection.organization_id)
                .where(
                    *_may_call(now),
                    _mirrored(),
                    or_(*stale),
                )
                .order_by(connection.organization_id)
            )
        )

    @staticmethod
    def organizations_to_mirror(session: Session, older_than: datetime) -> list[str]:
        """Organizations with a working connection whose mirror never loaded, or last read
        Salesforce's changes before ``older_than``."""
        connection = SalesforceConnection
        cursor = SalesforceMirrorCursor
        mine = cursor.sobject.not_like(f"{CHANGES_CURSOR}%")  # not the changes pull's
        never = ~exists().where(cursor.organization_id == connection.organization_id, mine)
        stale = exists().where(
            cursor.organization_id == connection.organization_id,
            mine,
            cursor.updated_until < older_than,
        )
        return list(
            session.scalars(
                select(connection.organization_id)
                .where(
                    connection.status.in_([SalesforceStatus.ACTIVE, SalesforceStatus.NEEDS_SETUP]),
                    or_(never, stale),
                )
                .order_by(connection.organization_id)
            )
        )


def _may_call(now: datetime) -> list[ColumnElement[bool]]:
    """A connection that works and whose calls are not paused at ``now``."""
    connection = SalesforceConnection
    return [
        connection.status.in_([SalesforceStatus.ACTIVE, SalesforceStatus.NEEDS_SETUP]),
        or_(connection.writer_paused_until.is_(None), connection.writer_paused_until <= now),
    ]


def _mirrored() -> ColumnElement[bool]:
    """The mirror has read the connection's org once (its cursors, not the changes pull's)."""
    return exists().where(
        SalesforceMirrorCursor.organization_id == SalesforceConnection.organization_id,
        SalesforceMirrorCursor.sobject.not_like(f"{CHANGES_CURSOR}%"),
    )
