"""web sign-in: local credentials, sessions, Microsoft sign-in requests

Revision ID: 0002_web
Revises: 0001
Create Date: 2026-11-30 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0002_web"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_local_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("login", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "password_changed_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_web_local_credentials_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_local_credentials")),
        sa.UniqueConstraint("login", name=op.f("uq_web_local_credentials_login")),
    )
    with op.batch_alter_table("web_local_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_local_credentials_member_id"), ["member_id"], unique=True
        )

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("sign_in_method", sa.String(length=16), nullable=False),
        sa.Column("created_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_web_sessions_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_web_sessions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_web_sessions_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "web_microsoft_sign_in_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("browser_binding_hash", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("authority", sa.String(length=500), nullable=False),
        sa.Column("flow", sa.JSON(), nullable=False),
        sa.Column("created_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_web_microsoft_sign_in_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_microsoft_sign_in_requests")),
        sa.UniqueConstraint("state", name=op.f("uq_web_microsoft_sign_in_requests_state")),
    )
    with op.batch_alter_table("web_microsoft_sign_in_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_microsoft_sign_in_requests_organization_id"),
            ["organization_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("web_microsoft_sign_in_requests")
    op.drop_table("web_sessions")
    op.drop_table("web_local_credentials")
