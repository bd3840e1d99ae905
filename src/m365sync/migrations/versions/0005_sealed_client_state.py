"""change-notification clientState sealed at rest

The plaintext ``client_state`` column is replaced by ``client_state_sealed`` (AES-GCM, like
every other stored secret). A migration has no business holding the secret key, so
existing secrets are not re-sealed: each subscription is marked unhealthy with no secret,
and the next scheduler pass deletes it at Microsoft and creates a new one with a fresh
sealed secret (until then, polling covers the unit and its notifications are refused).

Revision ID: 0005_sealed_client_state
Revises: 0004_scheduling
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_sealed_client_state"
down_revision: str | None = "0004_scheduling"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_subscriptions") as batch:
        batch.add_column(sa.Column("client_state_sealed", sa.LargeBinary(), nullable=True))
    op.execute(sa.text("UPDATE sync_subscriptions SET healthy = :no").bindparams(no=False))
    with op.batch_alter_table("sync_subscriptions") as batch:
        batch.drop_column("client_state")


def downgrade() -> None:
    # Sealed secrets can't be turned back into plaintext here: the subscriptions are
    # recreated with new secrets after a downgrade too.
    with op.batch_alter_table("sync_subscriptions") as batch:
        batch.add_column(
            sa.Column("client_state", sa.String(length=128), nullable=False, server_default="")
        )
    op.execute(sa.text("UPDATE sync_subscriptions SET healthy = :no").bindparams(no=False))
    with op.batch_alter_table("sync_subscriptions") as batch:
        batch.drop_column("client_state_sealed")
