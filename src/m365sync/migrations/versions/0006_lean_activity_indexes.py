"""leaner activity storage: link tables without rowid (SQLite), two partial indexes

Every email a sync logs writes one ``crm_activities`` row and its link rows
(``crm_activity_people``, ``crm_activity_records``, ``crm_activity_members``), so each
index on them is paid tens of thousands of times in a first sync:

- On SQLite, the link tables become ``WITHOUT ROWID`` tables: their rows live in the
  primary-key B-tree itself instead of in a rowid table plus a separate primary-key index,
  one B-tree write per link row instead of two. (PostgreSQL has no rowid; nothing changes
  there.)
- ``ix_crm_activities_series_key`` indexes only the rows that have a series (meeting
  occurrences); emails and tasks, whose ``series_key`` is always NULL, no longer enter it.
- ``ix_crm_activities_org_kind_seq`` (CRM-side changes to push to Outlook) indexes only
  rows edited on the CRM side (``change_seq > 0``); logged emails never are.

Revision ID: 0006_lean_activity_indexes
Revises: 0005_sealed_client_state
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_lean_activity_indexes"
down_revision: str | None = "0005_sealed_client_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_TABLES = ("crm_activity_people", "crm_activity_records", "crm_activity_members")
HAS_SERIES = "series_key IS NOT NULL"
EDITED_IN_CRM = "change_seq > 0"
SEQ_INDEX_COLUMNS = ["organization_id", "kind", "change_seq"]


def _rebuild_link_tables(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in LINK_TABLES:
        # A batch "recreate" copies the rows into a new table built with these options.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
        ):
            pass


def _replace_index(name: str, columns: list[str], where: str | None) -> None:
    """Recreate an index of ``crm_activities``, partial when ``where`` is given."""
    op.drop_index(name, table_name="crm_activities")
    condition = None if where is None else sa.text(where)
    op.create_index(
        name, "crm_activities", columns, sqlite_where=condition, postgresql_where=condition
    )


def upgrade() -> None:
    _rebuild_link_tables(with_rowid=False)
    _replace_index("ix_crm_activities_series_key", ["series_key"], HAS_SERIES)
    _replace_index("ix_crm_activities_org_kind_seq", SEQ_INDEX_COLUMNS, EDITED_IN_CRM)


def downgrade() -> None:
    _replace_index("ix_crm_activities_org_kind_seq", SEQ_INDEX_COLUMNS, None)
    _replace_index("ix_crm_activities_series_key", ["series_key"], None)
    _rebuild_link_tables(with_rowid=True)
