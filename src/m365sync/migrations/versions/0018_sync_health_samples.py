"""sync health samples: what the dashboard's charts draw

``sync_health_samples``: per member and five-minute bucket, the items the runs ending in it
logged, the runs that failed or were throttled, and the backlog (units due and waiting) when
the last of them ended.

Revision ID: 0018_sync_health_samples
Revises: 0017_salesforce_due_index
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0018_sync_health_samples"
down_revision: str | None = "0017_salesforce_due_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_health_samples",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("bucket", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("items_logged", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sync_health_samples_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_sync_health_samples_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "member_id", "bucket", name=op.f("pk_sync_health_samples")
        ),
    )


def downgrade() -> None:
    op.drop_table("sync_health_samples")
