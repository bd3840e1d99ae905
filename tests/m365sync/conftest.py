"""Fixtures for m365sync's tests: a migrated database on SQLite and PostgreSQL, settings
pointing at m365sim, a connection runtime, factories for organizations and members, and
Woodgrove's tenant. The values and helpers behind them are in ``tests/support``.

PostgreSQL: ``support.postgres.POSTGRES_URL``; one throwaway database per test session.
When it is unreachable the PostgreSQL parameter is skipped, unless
``M365SYNC_TEST_REQUIRE_SERVICES`` is set (CI), in which case it fails.
"""

from __future__ import annotations

import os
import shutil
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from m365sim.server import SimServer
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db import Base, Database, load_models, migrate
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof, Member, Organization, Role
from m365sync.settings import Settings
from support.demo import demo_settings, woodgrove_seed
from support.postgres import POSTGRES_URL


@pytest.fixture
def woodgrove_tenant(sim: SimServer) -> str:
    """Woodgrove's tenant added to m365sim through its control API; returns its id."""
    verify = ssl.create_default_context(cafile=str(sim.tls.ca_bundle))
    response = httpx.post(f"{sim.url}/_sim/tenants", json=woodgrove_seed(), verify=verify)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db-template") / "template.db"
    database = Database.from_url(f"sqlite:///{path}")
    migrate(database.engine)
    with database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    admin_url = make_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        if os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"):
            pytest.fail(
                f"PostgreSQL at {POSTGRES_URL} is required (M365SYNC_TEST_REQUIRE_SERVICES) but "
                f"unreachable: {exc}"
            )
        yield None
        return
    name = f"m365sync_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(url)
    migrate(database.engine)
    database.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate(database: Database) -> None:
    load_models()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated, empty database: SQLite (a file in tmp_path) or PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "m365sync.db"
        shutil.copy(sqlite_template, path)
        database = Database.from_url(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("postgres_url")
        if url is None:
            pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}")
        database = Database.from_url(url)
        _truncate(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def settings(sim: SimServer, tmp_path: Path) -> Settings:
    return demo_settings(sim, tmp_path / "data")


@pytest.fixture
def runtime(settings: Settings, db: Database) -> ConnectionRuntime:
    return ConnectionRuntime.from_settings(settings, db)


@pytest.fixture
def make_org(db: Database) -> Callable[..., Organization]:
    def factory(
        name: str = "Contoso",
        domains: tuple[str, ...] = ("contoso.com",),
        slug: str | None = None,
        *,
        verified: bool = True,
    ) -> Organization:
        """An organization with its domains, verified on the operator's word unless
        ``verified=False`` (their tenant is learnt at the first Run Test or connection)."""
        with db.session() as session:
            organization = orgs.create_organization(session, name, slug=slug)
            for domain in domains:
                orgs.add_domain(session, organization, domain)
                if verified:
                    orgs.verify_domain(session, organization, domain, method=DomainProof.OPERATOR)
        return organization

    return factory


@pytest.fixture
def make_member(db: Database) -> Callable[..., Member]:
    def factory(
        organization: Organization, email: str, role: Role = Role.USER, name: str = ""
    ) -> Member:
        with db.session() as session:
            org = orgs.get_organization(session, organization.id)
            return orgs.add_member(session, org, email, role=role, name=name)

    return factory
