"""Members' own time zone: the zone a member chose to read times in (NULL: their browser's)

Revision ID: 0011_member_time_zone
Revises: 0010_app_registration
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_member_time_zone"
down_revision: str | None = "0010_app_registration"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch operation would copy and drop the members
    # table, and with foreign keys on, dropping it deletes every row that refers to a member.
    op.drop_column("members", "time_zone")
