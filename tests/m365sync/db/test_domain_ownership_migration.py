"""0007 (domain ownership) on existing rows: a domain is migrated as verified only where the
old data already holds the service-account proof, and never for two organizations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from m365sync.db.migrate import migrate
from m365sync.db.session import Database
from support.demo import DEMO_TENANT_ID, WOODGROVE_TENANT_ID
from support.postgres import POSTGRES_URL

WHEN = "2026-11-30 00:00:00"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database of its own (migrated step by step by the test)."""
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite:///{tmp_path / 'm365sync.db'}")
        yield database
        database.dispose()
        return
    admin_url = make_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}")
    name = f"m365sync_migration_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database.from_url(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _organization(connection, org_id: str) -> None:
    connection.execute(
        text("INSERT INTO organizations (id, name, slug, created_at) VALUES (:id, :id, :id, :at)"),
        {"id": org_id, "at": WHEN},
    )


def _domain(connection, org_id: str, name: str, tenant_id: str | None) -> None:
    connection.execute(
        text(
            "INSERT INTO domains (id, organization_id, name, tenant_id, created_at) "
            "VALUES (:id, :org, :name, :tenant, :at)"
        ),
        {"id": f"{org_id}:{name}", "org": org_id, "name": name, "tenant": tenant_id, "at": WHEN},
    )


def _service_account(connection, org_id: str, tenant_id: str, granted: str) -> None:
    connection.execute(
        text(
            "INSERT INTO service_accounts (id, organization_id, name, kind, credential_type,"
            " tenant_id, status, status_detail, status_fix, granted_permissions,"
            " enabled_features, missing_permissions, created_at, updated_at) VALUES"
            " (:id, :org, 'SA', 'office365', 'secret', :tenant, 'active', '', '', :granted,"
            " '[]', '{}', :at, :at)"
        ),
        {
            "id": str(uuid.uuid4()),
            "org": org_id,
            "tenant": tenant_id,
            "granted": granted,
            "at": WHEN,
        },
    )


def test_existing_domains_are_verified_only_with_their_service_accounts_proof(empty_database):
    migrate(empty_database.engine, "0006_lean_activity_indexes")
    with empty_database.engine.begin() as connection:
        for org_id in ("contoso", "squatter", "twin-a", "twin-b", "unconsented"):
            _organization(connection, org_id)
        # Contoso: its service account holds permissions in the tenant its domain resolved to.
        _service_account(connection, "contoso", DEMO_TENANT_ID, '["Mail.Read"]')
        _domain(connection, "contoso", "contoso.com", DEMO_TENANT_ID)
        # The squatter's Run Test stamped Woodgrove's tenant on its claim of woodgrove.com;
        # its own service account is Contoso-tenant's (the old, unproven stamp).
        _service_account(connection, "squatter", DEMO_TENANT_ID, '["Mail.Read"]')
        _domain(connection, "squatter", "woodgrove.com", WOODGROVE_TENANT_ID)
        # Two organizations both consented in Woodgrove's tenant: neither is picked.
        for twin in ("twin-a", "twin-b"):
            _service_account(connection, twin, WOODGROVE_TENANT_ID, '["Mail.Read"]')
            _domain(connection, twin, "woodgrove.net", WOODGROVE_TENANT_ID)
        # A service account that never got consent proves nothing.
        _service_account(connection, "unconsented", DEMO_TENANT_ID, "[]")
        _domain(connection, "unconsented", "contoso.net", DEMO_TENANT_ID)

    migrate(empty_database.engine)
    with empty_database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, verified_at IS NOT NULL, verification_method, tenant_id,"
                " verification_token FROM domains ORDER BY id"
            )
        ).all()
    state = {row[0]: (bool(row[1]), row[2], row[3]) for row in rows}
    assert state == {
        "contoso:contoso.com": (True, "service_account", DEMO_TENANT_ID),
        "squatter:woodgrove.com": (False, None, None),
        "twin-a:woodgrove.net": (False, None, None),
        "twin-b:woodgrove.net": (False, None, None),
        "unconsented:contoso.net": (False, None, None),
    }
    tokens = [row[4] for row in rows]
    assert all(len(token) == 32 for token in tokens) and len(set(tokens)) == len(tokens)

    # And from now on the database itself refuses a second verified holder.
    with pytest.raises(IntegrityError), empty_database.engine.begin() as connection:
        connection.execute(
            text("UPDATE domains SET verified_at = :at WHERE name = 'woodgrove.net'"),
            {"at": WHEN},
        )
