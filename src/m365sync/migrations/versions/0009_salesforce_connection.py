"""Salesforce as the CRM: the connection, members' users, the people mirror, the writer's ledger

``salesforce_connections`` holds an organization's Salesforce org (sign-in kind, consumer
key, sealed secrets, what Run Test found, the API usage last seen, the writer's pause and
lease); ``salesforce_user_links`` each member's Salesforce user; ``salesforce_mirror_records``
and ``salesforce_mirror_cursors`` the mirror of Salesforce's contacts, leads, accounts and
open opportunities in the local store; ``salesforce_activity_records`` what each activity
became in Salesforce (the writer's ledger and queue). Nothing existing changes.

Revision ID: 0009_salesforce_connection
Revises: 0008_email_links_per_item
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0009_salesforce_connection"
down_revision: str | None = "0008_email_links_per_item"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "salesforce_connections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("login_url", sa.String(length=300), nullable=False),
        sa.Column(
            "auth_kind",
            sa.Enum(
                "web_server",
                "jwt_bearer",
                "client_credentials",
                name="salesforceauthkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("consumer_key", sa.String(length=300), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("consumer_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("private_key_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("certificate_pem", sa.Text(), nullable=True),
        sa.Column("refresh_token_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("pending_state", sa.String(length=100), nullable=True),
        sa.Column("pending_flow_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("pending_since", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("instance_url", sa.String(length=300), nullable=True),
        sa.Column("salesforce_org_id", sa.String(length=18), nullable=True),
        sa.Column("integration_user_id", sa.String(length=18), nullable=True),
        sa.Column("integration_username", sa.String(length=320), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "active",
                "needs_reconnect",
                "needs_setup",
                "disconnected",
                name="salesforcestatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("status_detail", sa.Text(), nullable=False),
        sa.Column("status_fix", sa.Text(), nullable=False),
        sa.Column("api_share", sa.Float(), nullable=True),
        sa.Column(
            "email_target",
            sa.Enum("email_message", "task", name="emailtarget", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("test_report", sa.JSON(), nullable=False),
        sa.Column("last_tested_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("api_used", sa.Integer(), nullable=True),
        sa.Column("api_limit", sa.Integer(), nullable=True),
        sa.Column("api_observed_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "writer_paused_until", m365sync.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("writer_pause_reason", sa.Text(), nullable=False),
        sa.Column("writer_lease_owner", sa.String(length=64), nullable=True),
        sa.Column("writer_lease_until", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("users_matched_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("connected_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_salesforce_connections_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_salesforce_connections")),
        sa.UniqueConstraint(
            "organization_id", name=op.f("uq_salesforce_connections_organization_id")
        ),
        sa.UniqueConstraint("pending_state", name=op.f("uq_salesforce_connections_pending_state")),
    )
    op.create_table(
        "salesforce_mirror_cursors",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("sobject", sa.String(length=40), nullable=False),
        sa.Column("updated_until", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_until", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_salesforce_mirror_cursors_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "sobject", name=op.f("pk_salesforce_mirror_cursors")
        ),
    )
    op.create_table(
        "salesforce_mirror_records",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("salesforce_id", sa.String(length=18), nullable=False),
        sa.Column("sobject", sa.String(length=40), nullable=False),
        sa.Column("local_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_salesforce_mirror_records_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "salesforce_id", name=op.f("pk_salesforce_mirror_records")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_salesforce_mirror_records_local",
        "salesforce_mirror_records",
        ["organization_id", "local_id"],
        unique=False,
    )

    op.create_table(
        "salesforce_user_links",
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("salesforce_user_id", sa.String(length=18), nullable=False),
        sa.Column("salesforce_username", sa.String(length=320), nullable=False),
        sa.Column("salesforce_name", sa.String(length=200), nullable=False),
        sa.Column(
            "matched_by",
            sa.Enum("email", "admin", name="usermatch", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("updated_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_salesforce_user_links_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_salesforce_user_links_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_salesforce_user_links")),
    )
    op.create_index(
        op.f("ix_salesforce_user_links_organization_id"),
        "salesforce_user_links",
        ["organization_id"],
        unique=False,
    )

    op.create_table(
        "salesforce_activity_records",
        sa.Column("activity_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "synced",
                "parked",
                "unmatched",
                name="writestate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("written_version", sa.Integer(), nullable=False),
        sa.Column("sobject", sa.String(length=40), nullable=False),
        sa.Column("salesforce_id", sa.String(length=18), nullable=True),
        sa.Column("uncertain", sa.Boolean(), nullable=False),
        sa.Column("relations", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fix", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("synced_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["crm_activities.id"],
            name=op.f("fk_salesforce_activity_records_activity_id_crm_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_salesforce_activity_records_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("activity_id", name=op.f("pk_salesforce_activity_records")),
    )
    op.create_index(
        "ix_salesforce_activity_records_pending",
        "salesforce_activity_records",
        ["organization_id", "next_attempt_at"],
        unique=False,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_salesforce_activity_records_state",
        "salesforce_activity_records",
        ["organization_id", "state"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_salesforce_activity_records_state", table_name="salesforce_activity_records")
    op.drop_index(
        "ix_salesforce_activity_records_pending",
        table_name="salesforce_activity_records",
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )

    op.drop_table("salesforce_activity_records")
    op.drop_index(
        op.f("ix_salesforce_user_links_organization_id"), table_name="salesforce_user_links"
    )

    op.drop_table("salesforce_user_links")
    op.drop_index("ix_salesforce_mirror_records_local", table_name="salesforce_mirror_records")

    op.drop_table("salesforce_mirror_records")
    op.drop_table("salesforce_mirror_cursors")
    op.drop_table("salesforce_connections")
