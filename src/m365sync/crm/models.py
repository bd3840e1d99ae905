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
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
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
            "ix_crm_activities_conversation",
            "organization_id",
            "conversation_id",
            sqlite_where=text("conversation_id IS NOT NULL"),
            postgresql_where=text("conversation_id IS NOT NULL"),
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
    # Emails: the mailbox's thread (Graph's conversationId; a mailbox's own, so replies
    # group within the mailbox that logged them) and the attachments' names, types and
    # sizes (their content stays in the mailbox).
    conversation_id: Mapped[str | None] = mapped_column(String(255), default=None)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
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


# -- Salesforce as the CRM -------------------------------------------------------------------
#
# The embedded store above stays the ledger the sync engine commits into. With a Salesforce
# connection, the tables below mirror Salesforce's people into it (so matching stays local)
# and record what each activity became in Salesforce (so the writer is idempotent).


def _sealed() -> Mapped[bytes | None]:
    return mapped_column(LargeBinary, default=None, info={"sealed": True})


class SalesforceAuthKind(enum.StrEnum):
    """How m365sync signs in to the org (``docs/salesforce.md``, Signing in)."""

    WEB_SERVER = "web_server"
    """Connect Salesforce: a person signs in; m365sync keeps the refresh token."""
    JWT_BEARER = "jwt_bearer"
    """Server to server with a certificate, as the integration user."""
    CLIENT_CREDENTIALS = "client_credentials"
    """Server to server with the consumer secret, as the connected app's Run As user."""


class SalesforceStatus(enum.StrEnum):
    """What people see of the connection; ``status_detail`` and ``status_fix`` say why."""

    PENDING = "pending"
    """Connect Salesforce was started and has not come back yet."""
    ACTIVE = "active"
    NEEDS_RECONNECT = "needs_reconnect"
    """Salesforce refused the sign-in: credentials or the connected app must be fixed."""
    NEEDS_SETUP = "needs_setup"
    """Signed in, but Run Test found something the org must change (a field, a permission)."""
    DISCONNECTED = "disconnected"


class EmailTarget(enum.StrEnum):
    """What an email becomes in Salesforce (Run Test decides)."""

    EMAIL_MESSAGE = "email_message"
    """Enhanced Email: one EmailMessage with an EmailMessageRelation per person."""
    TASK = "task"
    """Without Enhanced Email: a Task whose TaskSubtype is Email."""


class SalesforceConnection(Base):
    """An organization's Salesforce org: how to sign in (secrets sealed), who m365sync is
    there, what Run Test found, the API usage last seen, and the writer's pause."""

    __tablename__ = "salesforce_connections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    login_url: Mapped[str] = mapped_column(String(300))
    auth_kind: Mapped[SalesforceAuthKind] = mapped_column(enum_type(SalesforceAuthKind, length=32))
    consumer_key: Mapped[str] = mapped_column(String(300))
    username: Mapped[str | None] = mapped_column(String(320), default=None)
    """The integration user the JWT bearer flow signs in as."""
    consumer_secret_sealed: Mapped[bytes | None] = _sealed()
    private_key_sealed: Mapped[bytes | None] = _sealed()
    certificate_pem: Mapped[str | None] = mapped_column(Text, default=None)
    refresh_token_sealed: Mapped[bytes | None] = _sealed()
    # Connect Salesforce in progress: the state to find it by, and the sign-in started (PKCE
    # verifier, consumer key and secret, login URL, callback) sealed as one JSON document, so
    # a working connection is left alone until the new one is complete.
    pending_state: Mapped[str | None] = mapped_column(String(100), default=None, unique=True)
    pending_flow_sealed: Mapped[bytes | None] = _sealed()
    pending_since: Mapped[datetime | None] = mapped_column(default=None)
    # Who m365sync is in the org (from the token and the identity URL).
    instance_url: Mapped[str | None] = mapped_column(String(300), default=None)
    salesforce_org_id: Mapped[str | None] = mapped_column(String(18), default=None)
    integration_user_id: Mapped[str | None] = mapped_column(String(18), default=None)
    integration_username: Mapped[str | None] = mapped_column(String(320), default=None)
    status: Mapped[SalesforceStatus] = mapped_column(
        enum_type(SalesforceStatus, length=32), default=SalesforceStatus.PENDING
    )
    status_detail: Mapped[str] = mapped_column(Text, default="")
    status_fix: Mapped[str] = mapped_column(Text, default="")
    api_share: Mapped[float | None] = mapped_column(Float, default=None)
    """m365sync's share of the org's daily API requests; None: the server's setting."""
    create_leads: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Create a Salesforce Lead for a meeting's person m365sync added as a lead (a booked
    meeting's unknown invitee); off by default: such meetings wait as unmatched."""
    email_target: Mapped[EmailTarget | None] = mapped_column(
        enum_type(EmailTarget, length=32), default=None
    )
    test_report: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    last_tested_at: Mapped[datetime | None] = mapped_column(default=None)
    api_used: Mapped[int | None] = mapped_column(Integer, default=None)
    api_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    api_observed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The writer: paused until a time (the API limit), and who drains right now.
    writer_paused_until: Mapped[datetime | None] = mapped_column(default=None)
    writer_pause_reason: Mapped[str] = mapped_column(Text, default="")
    writer_lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    writer_lease_until: Mapped[datetime | None] = mapped_column(default=None)
    users_matched_at: Mapped[datetime | None] = mapped_column(default=None)
    connected_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserMatch(enum.StrEnum):
    EMAIL = "email"
    """Found by the member's address (redone when Salesforce's users change)."""
    ADMIN = "admin"
    """Chosen by an admin: never replaced by matching."""


class SalesforceUserLink(Base):
    """A member's Salesforce User: who owns what m365sync writes for them, and whom an
    email or meeting is related to when it sits in their mailbox or calendar."""

    __tablename__ = "salesforce_user_links"

    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = _org_fk()
    salesforce_user_id: Mapped[str] = mapped_column(String(18))
    salesforce_username: Mapped[str] = mapped_column(String(320), default="")
    salesforce_name: Mapped[str] = mapped_column(String(200), default="")
    matched_by: Mapped[UserMatch] = mapped_column(
        enum_type(UserMatch, length=16), default=UserMatch.EMAIL
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SalesforceMirrorRecord(Base):
    """One Salesforce Contact, Lead, Account or Opportunity mirrored into the local store:
    the local row (``local_id`` in ``crm_contacts``, ``crm_leads``, ``crm_accounts`` or
    ``crm_opportunities``) it is matched through. Several Salesforce contacts with one
    address share the local contact; the oldest is the one activities are related to."""

    __tablename__ = "salesforce_mirror_records"
    __table_args__ = (
        Index("ix_salesforce_mirror_records_local", "organization_id", "local_id"),
        _LINK_TABLE,
    )

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    salesforce_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    sobject: Mapped[str] = mapped_column(String(40))
    local_id: Mapped[str] = mapped_column(String(36))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When Salesforce created the record (the oldest of several wins)."""


class SalesforceMirrorCursor(Base):
    """How far the mirror has read one object's changes (``updated`` / ``deleted``)."""

    __tablename__ = "salesforce_mirror_cursors"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    sobject: Mapped[str] = mapped_column(String(40), primary_key=True)
    updated_until: Mapped[datetime] = mapped_column()
    deleted_until: Mapped[datetime] = mapped_column()
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class WriteState(enum.StrEnum):
    PENDING = "pending"
    """Waiting to be written (new, changed, or retrying after a temporary failure)."""
    SYNCED = "synced"
    """Salesforce holds the activity as the local store does."""
    PARKED = "parked"
    """Salesforce refused it for a reason a person must fix (``reason``, ``fix``); written
    again when the activity changes or an admin retries."""
    UNMATCHED = "unmatched"
    """Involves no Salesforce contact, lead or user: nothing to relate it to."""


PENDING_WRITES = text("state = 'pending'")


class SalesforceActivityRecord(Base):
    """What one local activity became in Salesforce: the writer's ledger.

    ``version`` counts the activity's local changes (bumped in the transaction that makes
    them, so the sync engine's commit and the queue are one); ``written_version`` is the one
    Salesforce holds. ``uncertain`` is set before a write is sent and cleared when its
    answer is recorded: still set, a crash came in between, and Salesforce is asked what
    it holds before anything is written again. ``relations`` are the Salesforce ids of the
    people (EmailMessageRelation / EventRelation) the record is known to be related to."""

    __tablename__ = "salesforce_activity_records"
    __table_args__ = (
        Index(  # the order ``SalesforceRepository.due`` reads in
            "ix_salesforce_activity_records_due",
            "organization_id",
            "next_attempt_at",
            "activity_id",
            sqlite_where=PENDING_WRITES,
            postgresql_where=PENDING_WRITES,
        ),
        Index("ix_salesforce_activity_records_state", "organization_id", "state"),
        Index("ix_salesforce_activity_records_salesforce_id", "organization_id", "salesforce_id"),
    )

    activity_id: Mapped[str] = mapped_column(
        ForeignKey("crm_activities.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    state: Mapped[WriteState] = mapped_column(
        enum_type(WriteState, length=16), default=WriteState.PENDING
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    written_version: Mapped[int] = mapped_column(Integer, default=0)
    sobject: Mapped[str] = mapped_column(String(40), default="")
    salesforce_id: Mapped[str | None] = mapped_column(String(18), default=None)
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    relations: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    fix: Mapped[str] = mapped_column(Text, default="")
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    synced_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AddressChoice(enum.StrEnum):
    RELATED = "related"
    """Related to the Salesforce record the rep chose (Contact, Lead, Account, Opportunity)."""
    NEW_LEAD = "new_lead"
    """A Lead the rep created for the address."""
    DISMISSED = "dismissed"
    """Not for Salesforce: what involves only dismissed addresses leaves the queue."""


class SalesforceAddressChoice(Base):
    """What a rep decided for an external address that matched no Contact or Lead (the
    unresolved queue): remembered for the organization, so what already waits and every
    later email or meeting with that address follows it. ``local_kind``/``local_id`` name
    the local contact or lead the chosen Contact or Lead is mirrored into (matching uses
    them); ``sobject``/``salesforce_id`` the record itself."""

    __tablename__ = "salesforce_address_choices"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    choice: Mapped[AddressChoice] = mapped_column(enum_type(AddressChoice, length=16))
    sobject: Mapped[str] = mapped_column(String(40), default="")
    salesforce_id: Mapped[str | None] = mapped_column(String(18), default=None)
    label: Mapped[str] = mapped_column(String(400), default="")
    local_kind: Mapped[str | None] = mapped_column(String(16), default=None)
    local_id: Mapped[str | None] = mapped_column(String(36), default=None)
    chosen_by_member_id: Mapped[str | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), default=None
    )
    chosen_at: Mapped[datetime] = mapped_column(default=utcnow)
