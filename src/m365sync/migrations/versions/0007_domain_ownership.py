"""domain ownership: a domain is verified by one organization at most

``domains`` gains ``verified_at``, ``verification_method`` and ``verification_token`` (the
value of the DNS TXT record that proves the domain), and ``uq_domains_verified_name``, a
unique index over verified rows only (partial, on SQLite and PostgreSQL): several
organizations may claim a name, one at most may hold it verified.

``tenant_id`` now means the tenant the domain is *verified* in. Before this revision every
Run Test stamped each domain with the tenant OpenID discovery resolved it to, proven or not,
so an organization that claimed another's domain got the other's tenant written on its row.

Existing rows start verified only where the old data already holds the proof the new rules
ask for: a domain whose stamped tenant is the tenant of an Office 365 service account *of
the same organization* that holds granted application permissions. Discovery resolved the
domain to that tenant, and Entra issued that tenant an app-only token carrying permissions,
which only an admin's consent in that tenant allows: exactly the service-account proof. Such
rows are recorded with the method ``service_account`` and verified at the migration's time.
Where two organizations qualify for the same name (both consented in the same tenant), none
is verified: the next Run Test of either decides, rather than this migration picking one.
Every other row starts unverified, its unproven tenant cleared; its mailboxes wait until an
admin verifies it (a service account's Run Test does it again by itself).

Revision ID: 0007_domain_ownership
Revises: 0006_lean_activity_indexes
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import m365sync.db.base

revision: str = "0007_domain_ownership"
down_revision: str | None = "0006_lean_activity_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERIFIED = sa.text("verified_at IS NOT NULL")

domains = sa.table(
    "domains",
    sa.column("id", sa.String),
    sa.column("organization_id", sa.String),
    sa.column("name", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("verified_at", m365sync.db.base.UTCDateTime(timezone=True)),
    sa.column("verification_method", sa.String),
    sa.column("verification_token", sa.String),
)
service_accounts = sa.table(
    "service_accounts",
    sa.column("organization_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("granted_permissions", sa.JSON),
)


def _consented_tenants(bind: sa.Connection) -> set[tuple[str, str]]:
    """(organization id, tenant id) of every Office 365 service account holding permissions."""
    consented = set()
    for organization_id, tenant_id, granted in bind.execute(
        sa.select(
            service_accounts.c.organization_id,
            service_accounts.c.tenant_id,
            service_accounts.c.granted_permissions,
        ).where(service_accounts.c.kind == "office365", service_accounts.c.tenant_id.is_not(None))
    ):
        permissions = json.loads(granted) if isinstance(granted, str) else granted
        if permissions:
            consented.add((organization_id, tenant_id))
    return consented


def upgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.add_column(
            sa.Column("verified_at", m365sync.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("verification_method", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("verification_token", sa.String(length=64), nullable=True))

    bind = op.get_bind()
    consented = _consented_tenants(bind)
    rows = bind.execute(
        sa.select(domains.c.id, domains.c.organization_id, domains.c.name, domains.c.tenant_id)
    ).all()
    proven: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.tenant_id and (row.organization_id, row.tenant_id) in consented:
            proven[row.name].append(row.id)
    verified = {ids[0] for ids in proven.values() if len(ids) == 1}
    now = datetime.now(UTC)
    for row in rows:
        values: dict[str, object] = {"verification_token": secrets.token_hex(16)}
        if row.id in verified:
            values.update(verified_at=now, verification_method="service_account")
        else:
            values["tenant_id"] = None
        bind.execute(sa.update(domains).where(domains.c.id == row.id).values(**values))

    with op.batch_alter_table("domains") as batch:
        batch.alter_column("verification_token", existing_type=sa.String(length=64), nullable=False)
    op.create_index(
        "uq_domains_verified_name",
        "domains",
        ["name"],
        unique=True,
        sqlite_where=VERIFIED,
        postgresql_where=VERIFIED,
    )


def downgrade() -> None:
    op.drop_index("uq_domains_verified_name", table_name="domains")
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("verification_token")
        batch.drop_column("verification_method")
        batch.drop_column("verified_at")
