"""calendar scheduling: meeting types, team links, bookings and slot claims

Revision ID: 0004_scheduling
Revises: 0003_sync
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0004_scheduling"
down_revision: str | None = "0003_sync"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduling_settings",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("create_leads", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scheduling_settings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_scheduling_settings")),
    )
    op.create_table(
        "meeting_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "one_on_one",
                "round_robin",
                "collective",
                name="meetingkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("slot_interval_minutes", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(length=300), nullable=False),
        sa.Column("online_meeting", sa.Boolean(), nullable=False),
        sa.Column(
            "availability_source",
            sa.Enum("outlook", "custom", name="availabilitysource", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("buffer_before_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_after_minutes", sa.Integer(), nullable=False),
        sa.Column("minimum_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("blocking_statuses", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_member_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_member_id"],
            ["members.id"],
            name=op.f("fk_meeting_types_created_by_member_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_meeting_types_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_types")),
        sa.UniqueConstraint(
            "organization_id", "slug", name=op.f("uq_meeting_types_organization_id_slug")
        ),
    )
    op.create_index(
        op.f("ix_meeting_types_organization_id"), "meeting_types", ["organization_id"], unique=False
    )
    op.create_table(
        "member_scheduling",
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_scheduling_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_member_scheduling_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_scheduling")),
    )
    op.create_index(
        op.f("ix_member_scheduling_organization_id"),
        "member_scheduling",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "availability_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("meeting_type_id", sa.String(length=36), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_type_id"],
            ["meeting_types.id"],
            name=op.f("fk_availability_rules_meeting_type_id_meeting_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_availability_rules")),
    )
    op.create_index(
        op.f("ix_availability_rules_meeting_type_id"),
        "availability_rules",
        ["meeting_type_id"],
        unique=False,
    )
    op.create_table(
        "booking_questions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("meeting_type_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("multiline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_type_id"],
            ["meeting_types.id"],
            name=op.f("fk_booking_questions_meeting_type_id_meeting_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_questions")),
    )
    op.create_index(
        op.f("ix_booking_questions_meeting_type_id"),
        "booking_questions",
        ["meeting_type_id"],
        unique=False,
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("meeting_type_id", sa.String(length=36), nullable=False),
        sa.Column("organizer_member_id", sa.String(length=36), nullable=False),
        sa.Column("host_member_ids", sa.JSON(), nullable=False),
        sa.Column("start", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "confirmed",
                "cancelled",
                "failed",
                name="bookingstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("invitee_name", sa.String(length=200), nullable=False),
        sa.Column("invitee_email", sa.String(length=320), nullable=False),
        sa.Column("invitee_time_zone", sa.String(length=64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("graph_event_id", sa.String(length=300), nullable=True),
        sa.Column("ical_uid", sa.String(length=300), nullable=True),
        sa.Column("online_meeting_url", sa.String(length=1000), nullable=True),
        sa.Column("crm_event_id", sa.String(length=100), nullable=True),
        sa.Column("crm_person_id", sa.String(length=100), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("created_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_type_id"],
            ["meeting_types.id"],
            name=op.f("fk_bookings_meeting_type_id_meeting_types"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bookings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizer_member_id"],
            ["members.id"],
            name=op.f("fk_bookings_organizer_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index(op.f("ix_bookings_invitee_email"), "bookings", ["invitee_email"], unique=False)
    op.create_index(
        op.f("ix_bookings_meeting_type_id"), "bookings", ["meeting_type_id"], unique=False
    )
    op.create_index(
        op.f("ix_bookings_organization_id"), "bookings", ["organization_id"], unique=False
    )
    op.create_index(
        op.f("ix_bookings_organizer_member_id"), "bookings", ["organizer_member_id"], unique=False
    )
    op.create_index(op.f("ix_bookings_start"), "bookings", ["start"], unique=False)
    op.create_table(
        "date_overrides",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("meeting_type_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_type_id"],
            ["meeting_types.id"],
            name=op.f("fk_date_overrides_meeting_type_id_meeting_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_date_overrides")),
    )
    op.create_index(
        op.f("ix_date_overrides_meeting_type_id"),
        "date_overrides",
        ["meeting_type_id"],
        unique=False,
    )
    op.create_table(
        "meeting_type_hosts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("meeting_type_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_type_id"],
            ["meeting_types.id"],
            name=op.f("fk_meeting_type_hosts_meeting_type_id_meeting_types"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_meeting_type_hosts_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_type_hosts")),
        sa.UniqueConstraint(
            "meeting_type_id",
            "member_id",
            name=op.f("uq_meeting_type_hosts_meeting_type_id_member_id"),
        ),
    )
    op.create_index(
        op.f("ix_meeting_type_hosts_meeting_type_id"),
        "meeting_type_hosts",
        ["meeting_type_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_meeting_type_hosts_member_id"), "meeting_type_hosts", ["member_id"], unique=False
    )
    op.create_table(
        "booking_claims",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("booking_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("block_start", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_booking_claims_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_booking_claims_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_claims")),
        sa.UniqueConstraint(
            "member_id", "block_start", name=op.f("uq_booking_claims_member_id_block_start")
        ),
    )
    op.create_index(
        op.f("ix_booking_claims_booking_id"), "booking_claims", ["booking_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_claims_booking_id"), table_name="booking_claims")
    op.drop_table("booking_claims")
    op.drop_index(op.f("ix_meeting_type_hosts_member_id"), table_name="meeting_type_hosts")
    op.drop_index(op.f("ix_meeting_type_hosts_meeting_type_id"), table_name="meeting_type_hosts")
    op.drop_table("meeting_type_hosts")
    op.drop_index(op.f("ix_date_overrides_meeting_type_id"), table_name="date_overrides")
    op.drop_table("date_overrides")
    op.drop_index(op.f("ix_bookings_start"), table_name="bookings")
    op.drop_index(op.f("ix_bookings_organizer_member_id"), table_name="bookings")
    op.drop_index(op.f("ix_bookings_organization_id"), table_name="bookings")
    op.drop_index(op.f("ix_bookings_meeting_type_id"), table_name="bookings")
    op.drop_index(op.f("ix_bookings_invitee_email"), table_name="bookings")
    op.drop_table("bookings")
    op.drop_index(op.f("ix_booking_questions_meeting_type_id"), table_name="booking_questions")
    op.drop_table("booking_questions")
    op.drop_index(op.f("ix_availability_rules_meeting_type_id"), table_name="availability_rules")
    op.drop_table("availability_rules")
    op.drop_index(op.f("ix_member_scheduling_organization_id"), table_name="member_scheduling")
    op.drop_table("member_scheduling")
    op.drop_index(op.f("ix_meeting_types_organization_id"), table_name="meeting_types")
    op.drop_table("meeting_types")
    op.drop_table("scheduling_settings")
