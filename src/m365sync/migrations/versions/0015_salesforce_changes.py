"""Salesforce changes: the writer's ledger found by Salesforce id

Pulling the Events and Tasks changed or deleted in Salesforce (``crm.salesforce_changes``)
looks each one up in ``salesforce_activity_records`` by its Salesforce id, a page of ids at
a time; without an index that read every ledger row of the organization (one per logged
email) on every poll with changes. The poll's cursors reuse ``salesforce_mirror_cursors``
(rows ``changes:Event`` and ``changes:Task``).

Revision ID: 0015_salesforce_changes
Revises: 0013_scale_out
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_salesforce_changes"
down_revision: str | None = "0013_scale_out"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_salesforce_activity_records_salesforce_id",
        "salesforce_activity_records",
        ["organization_id", "salesforce_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_salesforce_activity_records_salesforce_id", table_name="salesforce_activity_records"
    )
