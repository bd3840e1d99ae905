"""the Salesforce writer's due index: in the order a round reads

``ix_salesforce_activity_records_pending`` (organization, next attempt; pending rows only)
becomes ``ix_salesforce_activity_records_due``, with the activity id last: a round reads the
first thousand due writes by (next attempt, activity id), and with the id in the index the
database reads them in order instead of sorting every pending row each round.

Revision ID: 0017_salesforce_due_index
Revises: 0016_salesforce_changes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_salesforce_due_index"
down_revision: str | None = "0016_salesforce_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "salesforce_activity_records"
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index(
        "ix_salesforce_activity_records_pending",
        table_name=TABLE,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_salesforce_activity_records_due",
        TABLE,
        ["organization_id", "next_attempt_at", "activity_id"],
        unique=False,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_salesforce_activity_records_due",
        table_name=TABLE,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_salesforce_activity_records_pending",
        TABLE,
        ["organization_id", "next_attempt_at"],
        unique=False,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
