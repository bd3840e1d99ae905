"""Salesforce changes: the writer's ledger found by Salesforce id; Leads for bookings;
the unresolved queue's choices

Pulling the Events and Tasks changed or deleted in Salesforce (``crm.salesforce_changes``)
looks each one up in ``salesforce_activity_records`` by its Salesforce id, a page of ids at
a time; without an index that read every ledger row of the organization (one per logged
email) on every poll with changes. The poll's cursors reuse ``salesforce_mirror_cursors``
(rows ``changes:Event`` and ``changes:Task``).

``salesforce_connections.create_leads``: whether the writer creates a Salesforce Lead for
a meeting's person m365sync added as a lead (a booked meeting's unknown invitee); off by
default, so nothing is created in a customer's Salesforce unless an admin asks.

``salesforce_address_choices``: what a rep decided for an external address that matched no
Contact or Lead (related to a record, a new Lead, dismissed), remembered per organization.

Revision ID: 0016_salesforce_changes
Revises: 0015_email_threads
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0016_salesforce_changes"
down_revision: str | None = "0015_email_threads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("salesforce_connections") as batch:
        batch.add_column(
            sa.Column("create_leads", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "salesforce_address_choices",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "choice",
            sa.Enum(
                "related",
                "new_lead",
                "dismissed",
                name="addresschoice",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("sobject", sa.String(length=40), nullable=False),
        sa.Column("salesforce_id", sa.String(length=18), nullable=True),
        sa.Column("label", sa.String(length=400), nullable=False),
        sa.Column("local_kind", sa.String(length=16), nullable=True),
        sa.Column("local_id", sa.String(length=36), nullable=True),
        sa.Column("chosen_by_member_id", sa.String(length=36), nullable=True),
        sa.Column("chosen_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chosen_by_member_id"],
            ["members.id"],
            name=op.f("fk_salesforce_address_choices_chosen_by_member_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_salesforce_address_choices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "address", name=op.f("pk_salesforce_address_choices")
        ),
    )
    op.create_index(
        "ix_salesforce_activity_records_salesforce_id",
        "salesforce_activity_records",
        ["organization_id", "salesforce_id"],
    )


def downgrade() -> None:
    op.drop_table("salesforce_address_choices")
    with op.batch_alter_table("salesforce_connections") as batch:
        batch.drop_column("create_leads")
    op.drop_index(
        "ix_salesforce_activity_records_salesforce_id", table_name="salesforce_activity_records"
    )
