"""service accounts: the app registration m365sync set up itself

``service_accounts`` gains ``application_object_id`` (the app registration's object id) and
``certificate_key_id`` (the keyId of the certificate in use), both null except for accounts
"Set up for me" registered: renewing their certificate (``addKey`` / ``removeKey``) needs
them. Nothing existing changes.

Revision ID: 0010_app_registration
Revises: 0009_salesforce_connection
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_app_registration"
down_revision: str | None = "0009_salesforce_connection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.add_column(sa.Column("application_object_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("certificate_key_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.drop_column("certificate_key_id")
        batch.drop_column("application_object_id")
