"""email threads and attachments, and meeting rooms: the conversation and the attachments'
names, types and sizes on an email activity; a meeting type may book a room

``meeting_types.book_room``: book a free room mailbox with each meeting.
``bookings.room_email`` / ``room_name``: the room a booking got.

``crm_activities.conversation_id``: Graph's ``conversationId`` of the mailbox that logged
the email (indexed per organization, for the thread view). ``crm_activities.attachments``:
a JSON list of ``{name, contentType, size}``; the content stays in the mailbox.

Revision ID: 0015_email_threads
Revises: 0014_sync_unit_protocol
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_email_threads"
down_revision: str | None = "0014_sync_unit_protocol"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN on both databases: SQLite's batch mode would rebuild
    # crm_activities, and dropping the old table cascades into its link tables.
    op.add_column(
        "crm_activities", sa.Column("conversation_id", sa.String(length=255), nullable=True)
    )
    op.add_column(
        "crm_activities",
        sa.Column("attachments", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column(
        "meeting_types",
        sa.Column("book_room", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("bookings", sa.Column("room_email", sa.String(length=320), nullable=True))
    op.add_column("bookings", sa.Column("room_name", sa.String(length=200), nullable=True))
    op.create_index(
        "ix_crm_activities_conversation",
        "crm_activities",
        ["organization_id", "conversation_id"],
        unique=False,
        sqlite_where=sa.text("conversation_id IS NOT NULL"),
        postgresql_where=sa.text("conversation_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_crm_activities_conversation", table_name="crm_activities")
    op.drop_column("bookings", "room_name")
    op.drop_column("bookings", "room_email")
    op.drop_column("meeting_types", "book_room")
    op.drop_column("crm_activities", "attachments")
    op.drop_column("crm_activities", "conversation_id")
