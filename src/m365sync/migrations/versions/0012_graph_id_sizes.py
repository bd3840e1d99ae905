"""graph id sizes: a booking's CRM event id holds an Exchange iCalUId

``bookings.crm_event_id`` is the CRM event a booking became; with the embedded CRM that is
the meeting's ``iCalUId``, an Exchange global object id of 112 hexadecimal characters
(longer for meetings that came from other calendar systems), which did not fit in 100. It
now has the room the CRM's own ``external_id`` has (400).

Downgrading shortens the column again; PostgreSQL refuses that while a longer value is
stored.

Revision ID: 0012_graph_id_sizes
Revises: 0011_member_time_zone
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_graph_id_sizes"
down_revision: str | None = "0011_member_time_zone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.alter_column(
            "crm_event_id",
            existing_type=sa.String(length=100),
            type_=sa.String(length=400),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.alter_column(
            "crm_event_id",
            existing_type=sa.String(length=400),
            type_=sa.String(length=100),
            existing_nullable=True,
        )
