"""email links per mailbox item: crm_email_copies

An email's links to the mailboxes holding it were one row per (activity, member) in
``crm_activity_members``, with one item id and one folder. A message in two folders of one
mailbox (a copy sent to oneself sits in Inbox and Sent Items) kept only the folder synced
last, so deleting that copy deleted the email although the other was still there.

``crm_email_copies`` holds one row per (member, immutable item id) instead: every copy,
with its folder. The email rows of ``crm_activity_members`` move there (meetings and tasks
keep theirs). Links that had already left their mailbox (``removed_at`` set) are history
the new table does not keep: they are dropped, and nothing else changes for them (their
email was deleted then, or is held by another mailbox's live link, which moves).

Downgrading keeps one copy per (email, member): the one in the alphabetically first folder.

Revision ID: 0008_email_links_per_item
Revises: 0006_lean_activity_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0008_email_links_per_item"
down_revision: str | None = "0007_domain_ownership"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SET_ASIDE = "removed_at IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "crm_email_copies",
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("graph_item_id", sa.String(length=400), nullable=False),
        sa.Column("activity_id", sa.String(length=36), nullable=False),
        sa.Column("folder", sa.String(length=100), nullable=False),
        sa.Column("removed_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["crm_activities.id"],
            name=op.f("fk_crm_email_copies_activity_id_crm_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_crm_email_copies_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "graph_item_id", name=op.f("pk_crm_email_copies")),
        # Like the other link tables (0006): rows live in the primary-key B-tree on SQLite.
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_crm_email_copies_activity_id"), "crm_email_copies", ["activity_id"])
    op.create_index(
        "ix_crm_email_copies_removed",
        "crm_email_copies",
        ["member_id"],
        sqlite_where=sa.text(SET_ASIDE),
        postgresql_where=sa.text(SET_ASIDE),
    )
    # Both databases: INSERT ... SELECT with a WHERE (SQLite needs one before ON CONFLICT).
    op.execute(
        "INSERT INTO crm_email_copies (member_id, graph_item_id, activity_id, folder)"
        " SELECT member_id, graph_item_id, activity_id, folder FROM crm_activity_members"
        " WHERE activity_id IN (SELECT id FROM crm_activities WHERE kind = 'email')"
        " AND graph_item_id IS NOT NULL AND removed_at IS NULL"
        " ON CONFLICT DO NOTHING"
    )
    op.execute(
        "DELETE FROM crm_activity_members"
        " WHERE activity_id IN (SELECT id FROM crm_activities WHERE kind = 'email')"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO crm_activity_members"
        " (activity_id, member_id, graph_item_id, folder, pushed_seq)"
        " SELECT c.activity_id, c.member_id, c.graph_item_id, c.folder, 0"
        " FROM crm_email_copies c WHERE c.removed_at IS NULL AND NOT EXISTS ("
        "SELECT 1 FROM crm_email_copies o WHERE o.activity_id = c.activity_id"
        " AND o.member_id = c.member_id AND o.removed_at IS NULL"
        " AND (o.folder < c.folder OR (o.folder = c.folder AND o.graph_item_id < c.graph_item_id)))"
        " ON CONFLICT DO NOTHING"
    )
    op.drop_index("ix_crm_email_copies_removed", table_name="crm_email_copies")
    op.drop_index(op.f("ix_crm_email_copies_activity_id"), table_name="crm_email_copies")
    op.drop_table("crm_email_copies")
