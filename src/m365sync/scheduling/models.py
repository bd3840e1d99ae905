"""Meeting types, their availability rules, date overrides and questions; team links;
bookings and the slot claims that make double booking impossible.

A **team link** is a meeting type whose ``kind`` is ``round_robin`` or ``collective`` with
several hosts (``MeetingTypeHost``); a one-on-one meeting type has exactly one host.

**Never double-booked**: every confirmed booking holds one ``BookingClaim`` row per host
per ``CLAIM_GRANULARITY`` block of its meeting time, and ``(member_id, block_start)`` is
unique. Two bookings that overlap for the same rep need the same row, so the database
refuses the second one, whatever the backend and however many processes run.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from m365sync.db.base import Base, enum_type, new_id, utcnow

CLAIM_GRANULARITY = timedelta(minutes=5)
"""Durations, slot intervals and slot starts are multiples of this."""


class MeetingKind(enum.StrEnum):
    ONE_ON_ONE = "one_on_one"
    ROUND_ROBIN = "round_robin"  # the next free host, balanced by bookings
    COLLECTIVE = "collective"  # every host attends; a time when all are free


class AvailabilitySource(enum.StrEnum):
    OUTLOOK = "outlook"  # the host's working hours and time zone from Outlook
    CUSTOM = "custom"  # the meeting type's weekly rules, in the host's Outlook time zone


class BookingStatus(enum.StrEnum):
    PENDING = "pending"  # claimed locally; the Outlook event is being created
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    FAILED = "failed"  # Microsoft refused the event; the time was released


class SchedulingSettings(Base):
    """Per-organization scheduling choices."""

    __tablename__ = "scheduling_settings"

    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    create_leads: Mapped[bool] = mapped_column(Boolean, default=True)
    """An invitee who is neither a contact nor a lead becomes a lead."""


class MemberScheduling(Base):
    """Whether a member may be booked (an admin switches it off per member)."""

    __tablename__ = "member_scheduling"

    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeetingType(Base):
    __tablename__ = "meeting_types"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[MeetingKind] = mapped_column(
        enum_type(MeetingKind), default=MeetingKind.ONE_ON_ONE
    )
    duration_minutes: Mapped[int] = mapped_column(Integer, default=30)
    slot_interval_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    location: Mapped[str] = mapped_column(String(300), default="")
    online_meeting: Mapped[bool] = mapped_column(Boolean, default=True)
    # Book a free meeting room (a room mailbox of the tenant, from Graph's /places) with
    # each meeting; its name becomes the meeting's location.
    book_room: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_source: Mapped[AvailabilitySource] = mapped_column(
        enum_type(AvailabilitySource), default=AvailabilitySource.OUTLOOK
    )
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    minimum_notice_minutes: Mapped[int] = mapped_column(Integer, default=240)
    horizon_days: Mapped[int] = mapped_column(Integer, default=60)
    daily_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    blocking_statuses: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["busy", "tentative", "oof"]
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_member_id: Mapped[str | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    hosts: Mapped[list[MeetingTypeHost]] = relationship(
        cascade="all, delete-orphan", order_by="MeetingTypeHost.position", lazy="selectin"
    )
    rules: Mapped[list[AvailabilityRule]] = relationship(
        cascade="all, delete-orphan",
        order_by="(AvailabilityRule.weekday, AvailabilityRule.start_time)",
        lazy="selectin",
    )
    overrides: Mapped[list[DateOverride]] = relationship(
        cascade="all, delete-orphan", order_by="DateOverride.day", lazy="selectin"
    )
    questions: Mapped[list[Question]] = relationship(
        cascade="all, delete-orphan", order_by="Question.position", lazy="selectin"
    )

    @property
    def host_ids(self) -> list[str]:
        return [h.member_id for h in self.hosts]


class MeetingTypeHost(Base):
    __tablename__ = "meeting_type_hosts"
    __table_args__ = (UniqueConstraint("meeting_type_id", "member_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    meeting_type_id: Mapped[str] = mapped_column(
        ForeignKey("meeting_types.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class AvailabilityRule(Base):
    """A weekly window (``weekday`` Monday = 0) in the host's time zone."""

    __tablename__ = "availability_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    meeting_type_id: Mapped[str] = mapped_column(
        ForeignKey("meeting_types.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)  # 00:00 = midnight at the day's end


class DateOverride(Base):
    """A date whose windows replace the weekly ones; no times = not available that day."""

    __tablename__ = "date_overrides"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    meeting_type_id: Mapped[str] = mapped_column(
        ForeignKey("meeting_types.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time, default=None)
    end_time: Mapped[time | None] = mapped_column(Time, default=None)


class Question(Base):
    __tablename__ = "booking_questions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    meeting_type_id: Mapped[str] = mapped_column(
        ForeignKey("meeting_types.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(300))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    multiline: Mapped[bool] = mapped_column(Boolean, default=False)


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    meeting_type_id: Mapped[str] = mapped_column(
        ForeignKey("meeting_types.id", ondelete="CASCADE"), index=True
    )
    organizer_member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    """The host in whose calendar the Outlook event lives."""
    host_member_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    start: Mapped[datetime] = mapped_column(index=True)
    end: Mapped[datetime]
    status: Mapped[BookingStatus] = mapped_column(
        enum_type(BookingStatus), default=BookingStatus.PENDING
    )
    invitee_name: Mapped[str] = mapped_column(String(200))
    invitee_email: Mapped[str] = mapped_column(String(320), index=True)
    invitee_time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on reschedule: links issued for an earlier time stop working."""
    graph_event_id: Mapped[str | None] = mapped_column(String(300), default=None)
    ical_uid: Mapped[str | None] = mapped_column(String(300), default=None)
    online_meeting_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    room_email: Mapped[str | None] = mapped_column(String(320), default=None)
    room_name: Mapped[str | None] = mapped_column(String(200), default=None)
    crm_event_id: Mapped[str | None] = mapped_column(String(400), default=None)
    crm_person_id: Mapped[str | None] = mapped_column(String(100), default=None)
    failure: Mapped[str | None] = mapped_column(Text, default=None)
    cancel_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)

    meeting_type: Mapped[MeetingType] = relationship(lazy="joined")

    @property
    def active(self) -> bool:
        return self.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class BookingClaim(Base):
    """One host's ``CLAIM_GRANULARITY`` block held by a live booking (see module docstring)."""

    __tablename__ = "booking_claims"
    __table_args__ = (UniqueConstraint("member_id", "block_start"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    booking_id: Mapped[str] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    block_start: Mapped[datetime]
