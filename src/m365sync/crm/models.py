"""The embedded CRM store: accounts (with their email domains), contacts, leads,
opportunities, and activities (emails, events, tasks) linked to who and what.

Activities carry the Microsoft keys that make upserts idempotent: ``external_id`` is the
``internetMessageId`` of an email, the ``iCalUId`` of a meeting (occurrence) or the To Do
task id, unique per organization and kind. Which mailbox items hold an email lives in
``crm_email_copies``, one row per (member, immutable item id): a message can sit in two
folders of one mailbox (a copy sent to oneself is in Inbox and Sent Items) and in several
mailboxes, and is one activity however many copies there are. Which members' calendars
and To Do lists hold a meeting or task, with each one's immutable item id and
``changeKey``, lives in ``crm_activity_members``.

Text taken from mail is bounded when stored (``SUBJECT_MAX_CHARS``, ``NAME_MAX_CHARS``): a
message can carry a subject of megabytes, and every list of activities shows subjects.

``change_seq`` is bumped only by edits made on the CRM side (``EmbeddedCrm.crm_*``); the
sync engine reads "CRM changes since cursor" from it for two-way Calendar and Task Sync,
and never bumps it itself, so writes coming from Outlook are not echoed back.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, validates

from m365sync.crm.addresses import normalize_address
from m365sync.db.base import Base, enum_type, new_id, utcnow

SUBJECT_MAX_CHARS = 1_000
"""Subjects (email subjects, meeting subjects, task titles) are stored up to this length.
Outlook composes subjects under 255 characters (MS-OXCMSG: prefix and normalised subject
together under 254) and Salesforce's ``EmailMessage.Subject`` holds 3,000: no subject
written in Outlook is cut, and a cut one still fits a Salesforce target."""
NAME_MAX_CHARS = 200
"""Display names of participants are stored up to this length."""
SHORTENED = " [truncated]"
"""Ends a subject that was cut to ``SUBJECT_MAX_CHARS`` (the body's marker, on one line)."""


def bounded_subject(text: str) -> str:
    """``text`` as stored: unchanged up to ``SUBJECT_MAX_CHARS``, else cut so that it ends
    with ``SHORTENED`` and is exactly that long."""
    if len(text) <= SUBJECT_MAX_CHARS:
        return text
    return text[: SUBJECT_MAX_CHARS - len(SHORTENED)] + SHORTENED


class ActivityKind(enum.StrEnum):
    EMAIL = "email"
    EVENT = "event"
    TASK = "task"


class PersonKind(enum.StrEnum):
    CONTACT = "contact"
    LEAD = "lead"


class RecordKind(enum.StrEnum):
    ACCOUNT = "account"
    OPPORTUNITY = "opportunity"


def _org_fk() -> Mapped[str]:
    return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)


def _member_fk() -> Mapped[str | None]:
    return mapped_column(ForeignKey("members.id", ondelete="SET NULL"), default=None)


class CrmAccount(Base):
    __tablename__ = "crm_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = _org_fk()
    name: Mapped[str] = mapped_column(String(200))
    owner_member_id: Mapped[str | None] = _member_fk()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmAccountDomain(Base):
    """An email domain that identifies an account (mail from anyone @domain links to it)."""

    __tablename__ = "crm_account_domains"
    __table_args__ = (UniqueConstraint("organization_id", "domain"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = _org_fk()
    account_id: Mapped[str] = mapped_column(
        ForeignKey("crm_accounts.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(String(253))


class CrmContact(Base):
    __tablename__ = "crm_contacts"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = _org_fk()
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("crm_accounts.id", ondelete="SET NULL"), default=None, index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    owner_member_id: Mapped[str | None] = _member_fk()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @validates("email")
    def _normalize_email(self, _key: str, value: str) -> str:
        return normalize_address(value) or value.strip().lower()


class CrmLead(Base):
    __tablename__ = "crm_leads"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = _org_fk()
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(50), default="new")
    source: Mapped[str] = mapped_column(String(50), default="manual")
    owner_member_id: Mapped[str | None] = _member_fk()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @validates("email")
    def _normalize_email(self, _key: str, value: str) -> str:
        return normalize_address(value) or value.strip().lower()


class CrmOpportunity(Base):
    __tablename__ = "crm_opportunities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = _org_fk()
    account_id: Mapped[str] = mapped_column(
        ForeignKey("crm_accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(50), default="prospecting")
    amount: Mapped[Any] = mapped_column(Numeric(14, 2), default=None, nullable=True)
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_member_id: Mapped[str | None] = _member_fk()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmActivity(Base):
    """One email, one meeting (or occurrence of a series), or one task."""

    __tablename__ = "crm_activities"
    __table_args__ = (
        UniqueConstraint("organization_id", "kind", "external_id"),
        # Partial indexes keep logged emails (never edited on the CRM side, never in a
        # series) out of two of the table's indexes.
        Index(
            "ix_crm_activities_org_kind_seq",
            "organization_id",
            "kind",
            "change_seq",
            sqlite_where=text("change_seq > 0"),
            postgresql_where=text("change_seq > 0"),
        ),
        Index(
            "ix_crm_activities_series_key",
            "series_key",
            sqlite_where=text("series_key IS NOT NULL"),
            postgresql_where=text("series_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[ActivityKind] = mapped_column(enum_type(ActivityKind, length=16))
    external_id: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str | None] = mapped_column(Text, default=None)
    body_type: Mapped[str] = mapped_column(String(10), default="text")
    headers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    from_address: Mapped[str | None] = mapped_column(String(320), default=None)
    participants: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Events.
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    is_all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    location: Mapped[str] = mapped_column(String(500), default="")
    is_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    series_key: Mapped[str | None] = mapped_column(String(400), default=None)
    send_invitations: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tasks.
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(30), default="")
    importance: Mapped[str] = mapped_column(String(10), default="normal")
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Ownership and change tracking.
    owner_member_id: Mapped[str | None] = _member_fk()
    modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    change_seq: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Link tables are written once per logged email: on SQLite their rows live in the
# primary-key B-tree itself (no separate rowid table), one B-tree write per row, not two.
_LINK_TABLE: dict[str, Any] = {"sqlite_with_rowid": False}


class CrmActivityPerson(Base):
    """Who: a contact or lead the activity involves."""

    __tablename__ = "crm_activity_people"
    __table_args__ = (_LINK_TABLE,)

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("crm_activities.id", ondelete="CASCADE"), primary_key=True
    )
    person_kind: Mapped[PersonKind] = mapped_column(
        enum_type(PersonKind, length=16), primary_key=True
    )
    person_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class CrmActivityRecord(Base):
    """What: the account or opportunity the activity belongs to."""

    __tablename__ = "crm_activity_records"
    __table_args__ = (_LINK_TABLE,)

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("crm_activities.id", ondelete="CASCADE"), primary_key=True
    )
    record_kind: Mapped[RecordKind] = mapped_column(
        enum_type(RecordKind, length=16), primary_key=True
    )
    record_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class CrmActivityMember(Base):
    """A member's calendar or To Do copy of a meeting or task: the immutable item id there,
    its ``changeKey`` (to recognise our own writes), and how far CRM-side changes have been
    pushed to it (``pushed_seq``). Emails use ``CrmEmailCopy``."""

    __tablename__ = "crm_activity_members"
    __table_args__ = (
        Index("ix_crm_activity_members_member_item", "member_id", "graph_item_id"),
        _LINK_TABLE,
    )

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("crm_activities.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    graph_item_id: Mapped[str | None] = mapped_column(String(400), default=None)
    change_key: Mapped[str | None] = mapped_column(String(200), default=None)
    folder: Mapped[str] = mapped_column(String(100), default="")
    pushed_seq: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)


class CrmEmailCopy(Base):
    """One mailbox item holding a logged email: a member's copy, by its immutable item id,
    and the synced folder it is in.

    Immutable ids survive moves between folders, so a move updates ``folder`` and is neither
    a deletion nor a new email. A copy that left its folder gets ``removed_at`` and waits
    for the end of the member's email pass (``EmbeddedCrm.settle_email_copies``): if the
    item turned up in another synced folder meanwhile (a move), it is live again; if not,
    the copy is dropped, and under the "delete" policy the email is deleted once no copy is
    left in any mailbox."""

    __tablename__ = "crm_email_copies"
    __table_args__ = (
        # Copies waiting to be settled: few at any time, so the index stays tiny.
        Index(
            "ix_crm_email_copies_removed",
            "member_id",
            sqlite_where=text("removed_at IS NOT NULL"),
            postgresql_where=text("removed_at IS NOT NULL"),
        ),
        _LINK_TABLE,
    )

    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    graph_item_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    activity_id: Mapped[str] = mapped_column(
        ForeignKey("crm_activities.id", ondelete="CASCADE"), index=True
    )
    folder: Mapped[str] = mapped_column(String(100), default="")
    removed_at: Mapped[datetime | None] = mapped_column(default=None)


class CrmSequence(Base):
    """Monotonic counters (``change_seq`` of CRM-side edits), one row per organization."""

    __tablename__ = "crm_sequences"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[int] = mapped_column(Integer, default=0)
