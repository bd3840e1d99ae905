"""sync units remember the protocol that serves them: Microsoft Graph or Exchange's EWS

``sync_units.protocol``: ``graph``, ``ews``, or empty before the first run. A hybrid
organization's on-premises mailboxes are synced over EWS; the next run starts with the
protocol that served the last one, and a switch (a mailbox moved to Exchange Online)
restarts the unit's rounds in the new protocol.

Revision ID: 0014_sync_unit_protocol
Revises: 0013_scale_out
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_sync_unit_protocol"
down_revision: str | None = "0013_scale_out"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_units") as batch:
        batch.add_column(
            sa.Column("protocol", sa.String(length=10), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_units") as batch:
        batch.drop_column("protocol")
