"""Fixtures for m365sync's tests: a migrated database on SQLite and PostgreSQL, settings
pointing at m365sim, a connection runtime, and factories for organizations and members.

PostgreSQL: ``postgresql+psycopg://postgres@127.0.0.1:5432/`` (override with
``M365SYNC_TEST_POSTGRES_URL``); one throwaway database per test session. When it is
unreachable the PostgreSQL parameter is skipped, unless ``M365SYNC_TEST_REQUIRE_SERVICES``
is set (CI), in which case it fails.
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
from sqlalchemy.orm import Session

from m365sim.server import SimServer
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db import Base, Database, load_models, migrate
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof, Member, Organization, Role
from m365sync.settings import Settings

POSTGRES_URL = os.environ.get(
    "M365SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DEMO_APP_ID = "11111111-2222-4333-8444-000000000001"
DEMO_SECRET = "Zx8Q~demo.service-account.secret-value-0001"
DEMO_SECRET_ID = "5ec2e7a1-0000-4000-8000-000000000001"
NO_CONSENT_APP_ID = "11111111-2222-4333-8444-000000000002"
NO_CONSENT_SECRET = "Zx8Q~demo.no-consent.secret-value-0002"
USER_APP_ID = "11111111-2222-4333-8444-000000000003"
USER_APP_SECRET = "Zx8Q~demo.user-connections.secret-0003"
DEMO_TENANT_ID = "6f1c2f4e-3b1a-4c1e-9a51-0c0ffee00001"

# A second customer, in its own Microsoft 365 tenant: Woodgrove (woodgrove.com).
WOODGROVE_TENANT_ID = "7e2b7c52-5d1a-4f0e-8b1c-00000000b001"
WOODGROVE_APP_ID = "22222222-3333-4444-8555-00000000b001"
WOODGROVE_SECRET = "Wd8Q~woodgrove.service-account.secret-b001"
WOODGROVE_PASSWORD = "Woodgrove-User-1!"
WOODGROVE_PRIVATE_SUBJECT = "Woodgrove private: acquisition terms"
WOODGROVE_PRIVATE_TASK = "Woodgrove private: call the board"


def woodgrove_seed(redirect_uris: tuple[str, ...] = ()) -> dict[str, object]:
    """Woodgrove's tenant in m365sim's seed format: an admin and a sales rep whose mailbox
    holds private mail (from a contact the demo CRM knows) and a private To Do task, a
    consented service account app, and the product's user-connection app with its secret
    (the service principal a multi-tenant app gets in each tenant that uses it)."""
    redirects = [
        f"{origin}/{path}"
        for origin in ("http://localhost:8365", "http://testserver")
        for path in ("connections/office365/callback", "auth/microsoft/callback")
    ]
    redirects += redirect_uris
    return {
        "id": WOODGROVE_TENANT_ID,
        "displayName": "Woodgrove",
        "domains": ["woodgrove.com"],
        "users": [
            {
                "userPrincipalName": "admin@woodgrove.com",
                "displayName": "Wade Admin",
                "password": WOODGROVE_PASSWORD,
                "isAdmin": True,
            },
            {
                "userPrincipalName": "wendy@woodgrove.com",
                "displayName": "Wendy Rep",
                "password": WOODGROVE_PASSWORD,
            },
        ],
        "apps": [
            {
                "displayName": "m365sync Service Account (Woodgrove)",
                "appId": WOODGROVE_APP_ID,
                "applicationPermissions": [
                    "Mail.Read",
                    "Mail.ReadWrite",
                    "Calendars.Read",
                    "Calendars.ReadWrite",
                ],
                "secrets": [
                    {
                        "keyId": "5ec2e7a1-0000-4000-8000-00000000b001",
                        "value": WOODGROVE_SECRET,
                        "expires": "+365d",
                    }
                ],
                "adminConsent": True,
            },
            {
                "displayName": "m365sync User Connections",
                "appId": USER_APP_ID,
                "signInAudience": "AzureADMultipleOrgs",
                "delegatedPermissions": [
                    "openid",
                    "profile",
                    "email",
                    "offline_access",
                    "User.Read",
                    "Mail.ReadWrite",
                    "Calendars.ReadWrite",
                    "Tasks.ReadWrite",
                ],
                "redirectUris": redirects,
                "secrets": [
                    {
                        "keyId": "5ec2e7a1-0000-4000-8000-00000000b003",
                        "value": USER_APP_SECRET,
                        "expires": "+365d",
                    }
                ],
            },
        ],
        "mailboxes": {
            "wendy@woodgrove.com": {
                "messages": [
                    {
                        "from": {"name": "Kim Buyer", "address": "kim@fabrikam.com"},
                        "subject": WOODGROVE_PRIVATE_SUBJECT,
                        "body": "<p>Confidential: the terms we discussed.</p>",
                        "receivedDateTime": "-2h",
                    }
                ],
                "todo": [{"title": WOODGROVE_PRIVATE_TASK}],
            }
        },
    }


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


def make_settings(sim: SimServer, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "authority_host": sim.url,
        "graph_url": sim.graph_url,
        "ca_bundle": sim.tls.ca_bundle,
        "user_app_client_id": USER_APP_ID,
        "user_app_client_secret": USER_APP_SECRET,
        "public_url": "http://localhost:8365",
        "graph_backoff_base_seconds": 0.01,
        "graph_backoff_max_seconds": 2.0,
        "graph_max_retries": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(sim: SimServer, tmp_path: Path) -> Settings:
    return make_settings(sim, tmp_path / "data")


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


def fresh(session: Session, organization: Organization) -> Organization:
    return orgs.get_organization(session, organization.id)
