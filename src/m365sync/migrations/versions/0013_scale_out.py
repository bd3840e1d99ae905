"""scale-out: queue tickets on sync units, and the scheduler's election row

``sync_units.queue_ticket`` / ``queued_at``: a unit handed to the Celery queue by the
elected scheduler (or the web's "sync now") carries a ticket; a queued message runs only
while its ticket is the unit's, so duplicates and leftovers do nothing, and a unit queued
long ago without running is queued again. ``scheduler_leases``: one row per singleton job
("scheduler"), whose owner leads until ``expires_at``.

Revision ID: 0013_scale_out
Revises: 0012_graph_id_sizes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0013_scale_out"
down_revision: str | None = "0012_graph_id_sizes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_units") as batch:
        batch.add_column(sa.Column("queue_ticket", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("queued_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("expires_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_leases")
    with op.batch_alter_table("sync_units") as batch:
        batch.drop_column("queued_at")
        batch.drop_column("queue_ticket")
