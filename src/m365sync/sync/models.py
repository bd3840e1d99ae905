"""Sync state: per-organization settings, one ``SyncUnit`` per (mailbox, feature), its
delta cursors, quarantined items and change-notification subscriptions.

A unit has two fields, as STYLE.md asks: ``status`` (what people see: active, needs
reconnect, blocked by access policy, ...) and ``stage`` (where the pipeline is, with
``stage_started_at``), plus a failure count, so a stuck unit is visible and resettable.
The lease columns (``lease_owner``, ``lease_expires_at``) make a unit run in one place at
a time on SQLite and PostgreSQL alike: taking it is one conditional ``UPDATE``.

Scaled out, a unit handed to the Celery queue carries a ticket (``queue_ticket``, with
``queued_at``): a queued message runs only while its ticket is the unit's, and taking the
lease clears it, so a message delivered twice, or one left over from before a re-queue,
does nothing. ``SchedulerLease`` elects the one active ``m365sync scheduler``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from m365sync.db.base import Base, enum_type, new_id, utcnow
from m365sync.sync.features import SyncFeature


class UnitStatus(enum.StrEnum):
    """What people see."""

    PENDING = "pending"  # never run yet
    ACTIVE = "active"
    BACKING_OFF = "backing_off"  # transient failures; retrying by itself
    NEEDS_RECONNECT = "needs_reconnect"
    NEEDS_CONSENT = "needs_consent"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
    BLOCKED_BY_POLICY = "blocked_by_access_policy"
    MAILBOX_UNAVAILABLE = "mailbox_unavailable"
    MAILBOX_FULL = "mailbox_full"
    NO_CONNECTION = "no_connection"
    DOMAIN_NOT_VERIFIED = "domain_not_verified"  # waits until its domain is proven
    FAILED = "failed"
    # The member disconnected their own connection: a choice, not a fault. Checked again now
    # and then (a service account may cover the mailbox later), never counted as needing
    # attention; connecting again makes it active.
    DISCONNECTED = "disconnected"

    @property
    def parked(self) -> bool:
        """Waiting for a person to fix something (checked again now and then)."""
        return self not in (
            UnitStatus.PENDING,
            UnitStatus.ACTIVE,
            UnitStatus.BACKING_OFF,
            UnitStatus.DISCONNECTED,
        )


class UnitStage(enum.StrEnum):
    """Where the pipeline is."""

    IDLE = "idle"
    QUEUED = "queued"
    INITIAL_SYNC = "initial_sync"  # first pass / full resync (backfill)
    INCREMENTAL = "incremental"
    PUSHING = "pushing"  # CRM → Microsoft writes


class SyncSettings(Base):
    """An organization's sync rules (privacy, folders, windows). One row per organization;
    defaults apply when there is none."""

    __tablename__ = "sync_settings"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    mail_folders: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["inbox", "sentitems"])
    backfill_days: Mapped[int] = mapped_column(Integer, default=30)
    log_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    excluded_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    headers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    log_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    create_leads: Mapped[bool] = mapped_column(Boolean, default=False)
    delete_policy: Mapped[str] = mapped_column(String(16), default="keep")
    calendar_days_back: Mapped[int] = mapped_column(Integer, default=30)
    calendar_days_ahead: Mapped[int] = mapped_column(Integer, default=180)
    poll_interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncUnit(Base):
    """One unit of work: one feature of one member's mailbox."""

    __tablename__ = "sync_units"
    __table_args__ = (UniqueConstraint("member_id", "feature"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    feature: Mapped[SyncFeature] = mapped_column(enum_type(SyncFeature))
    status: Mapped[UnitStatus] = mapped_column(enum_type(UnitStatus), default=UnitStatus.PENDING)
    stage: Mapped[UnitStage] = mapped_column(enum_type(UnitStage), default=UnitStage.IDLE)
    stage_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_fix: Mapped[str] = mapped_column(Text, default="")
    last_error_code: Mapped[str] = mapped_column(String(100), default="")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    full_resync_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    queue_ticket: Mapped[str | None] = mapped_column(String(32), default=None)
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    # What served the last run: "graph" (Microsoft Graph) or "ews" (an Exchange Server).
    protocol: Mapped[str] = mapped_column(String(10), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerLease(Base):
    """Which process leads a singleton job (``name``: ``"scheduler"``) until when.

    The leader renews ``expires_at`` well before it passes; a standby takes the row over
    (one conditional ``UPDATE``) only once it has passed, so at most one process leads at a
    time on SQLite and PostgreSQL alike, and a leader that died is replaced within one
    lease."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column()
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCursor(Base):
    """Microsoft's delta link for one folder / calendar window / To Do list, stored as-is
    with the records it covers. ``next_link`` is set while a delta round is in progress, so
    a killed first sync resumes at the page it stopped at."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("unit_id", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(
        ForeignKey("sync_units.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(200))
    delta_link: Mapped[str | None] = mapped_column(Text, default=None)
    next_link: Mapped[str | None] = mapped_column(Text, default=None)
    window_start: Mapped[datetime | None] = mapped_column(default=None)
    window_end: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncHealthSample(Base):
    """Sync health over time, for the dashboard's charts: per member and five-minute
    bucket, what the runs that ended in it did (items logged, runs that failed, runs
    stopped by throttling) and the backlog (units due and waiting) when the last of them
    ended. Kept for ``HEALTH_HISTORY_DAYS``; an organization's chart adds its members up."""

    __tablename__ = "sync_health_samples"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    items_logged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    throttled: Mapped[int] = mapped_column(Integer, default=0)
    backlog: Mapped[int] = mapped_column(Integer, default=0)


class QuarantinedItem(Base):
    """An item that could not be handled: kept aside with the reason, the rest proceeds."""

    __tablename__ = "sync_quarantine"
    __table_args__ = (UniqueConstraint("unit_id", "item_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(
        ForeignKey("sync_units.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[str] = mapped_column(String(400))
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GraphSubscription(Base):
    """A change-notification subscription for one unit and resource.

    ``client_state_sealed`` is a random per-subscription secret that every notification
    must echo, sealed like every other secret at rest (``m365sync.crypto``, bound to this
    row; re-sealed by key rotation). It is never logged nor shown."""

    __tablename__ = "sync_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    unit_id: Mapped[str] = mapped_column(
        ForeignKey("sync_units.id", ondelete="CASCADE"), index=True
    )
    resource: Mapped[str] = mapped_column(String(400))
    subscription_id: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    client_state_sealed: Mapped[bytes | None] = mapped_column(
        LargeBinary, default=None, info={"sealed": True}
    )
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    healthy: Mapped[bool] = mapped_column(Boolean, default=False)
    last_notification_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
