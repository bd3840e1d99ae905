"""Salesforce changes: the writer's ledger found by Salesforce id; Leads for bookings

Pulling the Events and Tasks changed or deleted in Salesforce (``crm.salesforce_changes``)
looks each one up in ``salesforce_activity_records`` by its Salesforce id, a page of ids at
a time; without an index that read every ledger row of the organization (one per logged
email) on every poll with changes. The poll's cursors reuse ``salesforce_mirror_cursors``
(rows ``changes:Event`` and ``changes:Task``).

``salesforce_connections.create_leads``: whether the writer creates a Salesforce Lead for
a meeting's person m365sync added as a lead (a booked meeting's unknown invitee); off by
default, so nothing is created in a customer's Salesforce unless an admin asks.

Revision ID: 0015_salesforce_changes
Revises: 0013_scale_out
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_salesforce_changes"
down_revision: str | None = "0013_scale_out"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("salesforce_connections") as batch:
        batch.add_column(
            sa.Column("create_leads", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_salesforce_activity_records_salesforce_id",
        "salesforce_activity_records",
        ["organization_id", "salesforce_id"],
    )


def downgrade() -> None:
    with op.batch_alter_table("salesforce_connections") as batch:
        batch.drop_column("create_leads")
    op.drop_index(
        "ix_salesforce_activity_records_salesforce_id", table_name="salesforce_activity_records"
    )
