"""The CRM target interface: what the sync engine needs from any CRM.

The engine speaks only to ``CrmTarget``; the embedded store (``crm.embedded``) is the
first implementation and Salesforce the next. The interface is shaped for a remote CRM
too:

- **Batched lookups.** ``find_people`` and ``find_accounts_by_domain`` take every address
  (domain) of a page at once: one query (one SOQL ``IN (...)``) per page, not per message.
- **Idempotent upserts by external id.** Emails are keyed by ``internetMessageId``,
  meetings by ``iCalUId``, tasks by the To Do task id; running a page twice changes
  nothing (Salesforce: upsert on an External ID field).
- **CRM-side changes since a cursor** for two-way sync (``changes_since``): the cursor is
  opaque to the engine (a sequence number here, ``SystemModstamp`` in Salesforce).

Addresses handed to and returned by a target are normalised with ``normalize_address``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from m365sync.crm.addresses import address_domain, normalize_address
from m365sync.crm.models import ActivityKind, PersonKind

__all__ = [
    "AttachmentInfo",
    "CrmTarget",
    "EmailRecord",
    "EventRecord",
    "LinkedItem",
    "NewLead",
    "OutboundChange",
    "Participant",
    "PersonMatch",
    "PushResult",
    "TaskRecord",
    "UpsertResult",
    "address_domain",
    "normalize_address",
]


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone on a message or meeting; ``role`` is from/to/cc/bcc/organizer/attendee."""

    address: str
    name: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"address": self.address, "name": self.name, "role": self.role}


@dataclass(frozen=True, slots=True)
class PersonMatch:
    kind: PersonKind
    id: str
    email: str
    account_id: str | None


@dataclass(frozen=True, slots=True)
class NewLead:
    email: str
    name: str


@dataclass(slots=True)
class EmailRecord:
    """One message as a mailbox holds it (one folder item: ``graph_item_id`` is its
    immutable id), ready to be logged."""

    external_id: str
    member_id: str
    graph_item_id: str
    folder: str
    subject: str
    body: str | None
    body_type: str
    headers_only: bool
    occurred_at: datetime | None
    from_address: str | None
    participants: list[Participant]
    people: list[PersonMatch]
    account_ids: list[str]
    conversation_id: str | None = None
    attachments: list[AttachmentInfo] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class AttachmentInfo:
    """What is logged about one attachment: never its content."""

    name: str
    content_type: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "contentType": self.content_type, "size": self.size}


@dataclass(slots=True)
class EventRecord:
    """One meeting (or one occurrence of a series) as a member's calendar holds it."""

    external_id: str
    member_id: str
    graph_item_id: str
    change_key: str | None
    subject: str
    body: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    is_all_day: bool
    location: str
    is_cancelled: bool
    series_key: str | None
    modified_at: datetime
    participants: list[Participant]
    people: list[PersonMatch]
    account_ids: list[str]
    organizer_address: str | None = None


@dataclass(slots=True)
class TaskRecord:
    """One To Do task of a member's default list."""

    external_id: str
    member_id: str
    graph_item_id: str
    change_key: str | None
    title: str
    notes: str
    due_at: datetime | None
    status: str
    importance: str
    completed_at: datetime | None
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class LinkedItem:
    """What the CRM knows about a member's mailbox item, for echo and conflict checks."""

    activity_id: str
    change_key: str | None
    modified_at: datetime
    crm_pending: bool
    """A CRM-side edit not yet written to this mailbox."""


@dataclass(slots=True)
class OutboundChange:
    """A CRM-side create, edit or deletion to write to a member's calendar or To Do list."""

    activity_id: str
    kind: ActivityKind
    change_seq: int
    deleted: bool
    graph_item_id: str | None
    subject: str
    body: str | None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    is_all_day: bool = False
    location: str = ""
    attendees: list[Participant] = field(default_factory=list)
    send_invitations: bool = False
    due_at: datetime | None = None
    status: str = ""
    importance: str = "normal"
    modified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """What Microsoft answered to an outbound write (None ids for a deletion)."""

    activity_id: str
    change_seq: int
    graph_item_id: str | None
    change_key: str | None
    external_id: str | None = None


@dataclass(slots=True)
class UpsertResult:
    created: int = 0
    updated: int = 0
    linked: int = 0
    unchanged: int = 0


class CrmTarget(Protocol):
    """A CRM the engine logs into. Methods are called inside the job's transaction; a
    target must not commit (the job boundary does, together with the sync cursor)."""

    def find_people(self, emails: Collection[str]) -> dict[str, PersonMatch]:
        """Contacts and leads by normalised address (a contact wins over a lead)."""
        ...

    def find_accounts_by_domain(self, domains: Collection[str]) -> dict[str, str]:
        """Account id by email domain."""
        ...

    def create_leads(
        self, leads: Sequence[NewLead], owner_member_id: str
    ) -> dict[str, PersonMatch]: ...

    def upsert_emails(self, records: Sequence[EmailRecord]) -> UpsertResult:
        """One activity per ``internetMessageId``, linked to every record's mailbox item (a
        copy): the same message in two folders or two mailboxes is one activity with two
        copies. A copy that was set aside is live again, in the record's folder."""
        ...

    def upsert_events(self, records: Sequence[EventRecord]) -> UpsertResult: ...

    def upsert_tasks(self, records: Sequence[TaskRecord]) -> UpsertResult: ...

    def linked_items(
        self, kind: ActivityKind, member_id: str, graph_item_ids: Collection[str]
    ) -> dict[str, LinkedItem]: ...

    def adopt_tasks(
        self, member_id: str, records: Sequence[TaskRecord], keep: Collection[str]
    ) -> int:
        """Re-key the member's tasks that ``records`` name under another id: each record (not
        linked by its id) takes over one task of the member with the same title and due day
        whose mailbox item id is not in ``keep``, the oldest first. The same task seen through
        EWS and then To Do has two unrelated ids; this keeps it one CRM task. Returns how many
        were adopted."""
        ...

    def linked_item_ids(
        self,
        kind: ActivityKind,
        member_id: str,
        *,
        folder: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> set[str]:
        """The mailbox item ids this member's current links point at (optionally only
        those of ``folder`` and of activities that occurred in ``[since, until)``): what a
        full round is compared with to find deletions it could not report."""
        ...

    def remove_items(
        self,
        kind: ActivityKind,
        member_id: str,
        graph_item_ids: Collection[str],
        *,
        delete: bool,
        folder: str | None = None,
    ) -> int:
        """The items left this member's mailbox: unlink them; with ``delete``, also delete
        activities no mailbox holds any more. Returns how many activities were deleted.
        (Email Sync uses ``set_aside_email_copies`` and ``settle_email_copies`` instead, so
        that a message moved between two synced folders is not deleted on the way.)"""
        ...

    def set_aside_email_copies(
        self, member_id: str, graph_item_ids: Collection[str], *, folder: str | None = None
    ) -> None:
        """These items left ``folder`` of the member's mailbox, deleted or moved (a delta
        round can't tell): their copies wait for ``settle_email_copies``. One that turns up
        in another synced folder first (a move) is live again through ``upsert_emails``."""
        ...

    def settle_email_copies(self, member_id: str, *, delete: bool) -> int:
        """End of the member's email pass, every folder read: the copies still set aside
        are gone. Unlink them; with ``delete``, delete the emails no mailbox holds any copy
        of any more. Returns how many activities were deleted."""
        ...

    def changes_since(
        self, kind: ActivityKind, member_id: str, cursor: str | None, limit: int = 200
    ) -> tuple[list[OutboundChange], str | None]:
        """CRM-side changes to write to this member's mailbox, and the next cursor."""
        ...

    def record_pushed(
        self, kind: ActivityKind, member_id: str, results: Sequence[PushResult]
    ) -> None: ...
