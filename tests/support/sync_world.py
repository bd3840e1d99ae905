"""A synced organization against m365sim, for the sync, CRM and worker tests (the sync
harness).

``SyncWorld`` holds a migrated database, settings pointing at m365sim, the connections
runtime, and the demo organization "Contoso" with its domain, members and an Office 365
service account (the demo tenant's consented app). Mail, events and faults are changed
through m365sim's control API, the way the world changes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sync.connections.runtime import ConnectionRuntime, MailboxAccess
from m365sync.crm.models import CrmAccount, CrmAccountDomain, CrmContact, CrmLead
from m365sync.db.migrate import migrate
from m365sync.db.session import Database
from m365sync.microsoft.graph import GraphClient
from m365sync.organizations.models import DomainProof, Member
from m365sync.organizations.service import (
    add_domain,
    add_member,
    create_organization,
    verify_domain,
)
from m365sync.settings import Settings
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncSettings
from m365sync.sync.service import UnitResult, sync_member
from support.connections import store_service_account
from support.crm import InspectableCrm
from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID, demo_settings
from support.sim_tokens import mint_app_token, mint_user_token

MEMBERS = ("adele@contoso.com", "alex@contoso.com", "diego@contoso.com")


def empty_demo_tenant(sim: SimServer) -> None:
    """The demo tenant with empty mailboxes (the demo seed's sample mail and events left
    out), so each test's world is exactly what it builds."""
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
    sim.state.reset()
    load_seed(sim.state, data)


DELEGATED_SCOPES = ("Tasks.ReadWrite", "Mail.ReadWrite", "Calendars.ReadWrite", "User.Read")


def sync_settings(sim: SimServer, data_dir: Path, **overrides: Any) -> Settings:
    """The demo settings on a SQLite file in ``data_dir`` with a key of its own, and Graph
    retried patiently enough for the fault-injection tests."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{data_dir / 'm365sync.db'}",
        "secret_key": base64.b64encode(os.urandom(32)).decode(),
        "graph_backoff_max_seconds": 5.0,
        "graph_max_retries": 8,
    }
    values.update(overrides)
    return demo_settings(sim, data_dir, **values)


def engine_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"sync_jitter_seconds": 0, "sync_page_size": 200}
    values.update(overrides)
    return Settings(**values)


class DelegatedRuntime(ConnectionRuntime):
    """The connections runtime, serving Task Sync through a delegated token minted by the
    simulator's signing key (the stand-in for a completed "Connect your Office 365")."""

    sim: SimServer

    def graph_for_mailbox(self, session: Any, member: Member, feature: Any) -> MailboxAccess:
        from m365sync.connections.models import Feature

        if feature != Feature.TASKS:
            return super().graph_for_mailbox(session, member, feature)
        sim = self.sim

        async def token(*, force_refresh: bool = False, refused: str | None = None) -> str:
            return mint_user_token(sim, DEMO_TENANT_ID, member.email, DELEGATED_SCOPES)

        client = self.graph_client(f"delegated:{member.id}", "1", token)
        return MailboxAccess(
            client, "/me", frozenset(Feature), "user_connection", f"delegated:{member.id}"
        )


@dataclass
class SyncWorld:
    sim: SimServer
    database: Database
    settings: Settings
    runtime: DelegatedRuntime
    engine: Settings
    organization_id: str
    members: dict[str, str] = field(default_factory=dict)  # address → member id
    control: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.control = httpx.Client(
            base_url=self.sim.url,
            verify=ssl.create_default_context(cafile=self.sim.tls.ca_bundle),
            timeout=60,
        )

    # -- the CRM ----------------------------------------------------------------------------
    def add_account(self, name: str, domains: Iterable[str] = ()) -> str:
        with self.database.session() as s:
            account = CrmAccount(organization_id=self.organization_id, name=name)
            s.add(account)
            s.flush()
            for domain in domains:
                s.add(
                    CrmAccountDomain(
                        organization_id=self.organization_id, account_id=account.id, domain=domain
                    )
                )
            return account.id

    def add_contact(self, email: str, account_id: str | None = None, name: str = "") -> str:
        first, _, last = name.partition(" ")
        with self.database.session() as s:
            contact = CrmContact(
                organization_id=self.organization_id,
                email=email.lower(),
                account_id=account_id,
                first_name=first,
                last_name=last,
            )
            s.add(contact)
            s.flush()
            return contact.id

    def add_lead(self, email: str) -> str:
        with self.database.session() as s:
            lead = CrmLead(organization_id=self.organization_id, email=email.lower())
            s.add(lead)
            s.flush()
            return lead.id

    def configure(self, **values: Any) -> None:
        with self.database.session() as s:
            row = s.get(SyncSettings, self.organization_id)
            if row is None:
                row = SyncSettings(organization_id=self.organization_id)
                s.add(row)
            for key, value in values.items():
                setattr(row, key, value)

    @contextmanager
    def crm(self) -> Iterator[InspectableCrm]:
        """The embedded CRM in a committing session."""
        with self.database.session() as session:
            yield InspectableCrm(session, self.organization_id)

    # -- the world (m365sim control API) -----------------------------------------------------
    def deliver(self, mailbox: str, **spec: Any) -> dict[str, Any]:
        response = self.control.post(f"/_sim/mailboxes/{mailbox}/messages", json=spec)
        response.raise_for_status()
        return dict(response.json())

    def generate(self, mailbox: str, count: int, **spec: Any) -> None:
        response = self.control.post(
            f"/_sim/mailboxes/{mailbox}/messages/generate", json={"count": count, **spec}
        )
        response.raise_for_status()

    def sim_messages(self, mailbox: str, folder: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 1_000_000}
        if folder:
            params["folder"] = folder
        response = self.control.get(f"/_sim/mailboxes/{mailbox}/messages", params=params)
        response.raise_for_status()
        return list(response.json()["value"])

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        response = self.control.get("/_sim/requests", params=filters)
        response.raise_for_status()
        return list(response.json()["value"])

    def clear_requests(self) -> None:
        self.control.delete("/_sim/requests").raise_for_status()

    def sim_config(self, **values: Any) -> None:
        self.control.patch("/_sim/config", json=values).raise_for_status()

    # -- running the engine ------------------------------------------------------------------
    def sync(
        self, mailbox: str, feature: SyncFeature = SyncFeature.EMAIL, **kwargs: Any
    ) -> UnitResult:
        member_id = self.members[mailbox]
        return asyncio.run(self._sync(member_id, feature, **kwargs))

    async def _sync(self, member_id: str, feature: SyncFeature, **kwargs: Any) -> UnitResult:
        try:
            return await sync_member(
                self.database, self.runtime, member_id, feature, settings=self.engine, **kwargs
            )
        finally:
            await self.runtime.aclose()

    def todo_tasks(self, mailbox: str) -> list[dict[str, Any]]:
        """The tasks of ``mailbox``'s default To Do list, read through Graph as the member."""
        lists = self.control.get(f"/_sim/mailboxes/{mailbox}/todo/lists").json()["value"]
        default = next(item for item in lists if item["wellknownListName"] == "defaultList")

        async def token(*, force_refresh: bool = False, refused: str | None = None) -> str:
            return mint_user_token(self.sim, DEMO_TENANT_ID, mailbox, ["Tasks.ReadWrite"])

        async def fetch() -> list[dict[str, Any]]:
            client = GraphClient(self.settings, token)
            try:
                items, _ = await client.get_paged(f"/me/todo/lists/{default['id']}/tasks")
                return items
            finally:
                await client.aclose()

        return asyncio.run(fetch())

    def graph(self) -> GraphClient:
        async def token(*, force_refresh: bool = False, refused: str | None = None) -> str:
            return mint_app_token(
                self.sim, DEMO_TENANT_ID, SERVICE_APP_ID, ["Mail.ReadWrite", "Calendars.ReadWrite"]
            )

        return GraphClient(self.settings, token)


def build_world(
    sim: SimServer,
    tmp_path: Path,
    members: Iterable[str] = ("adele@contoso.com",),
    database: Database | None = None,
    **engine: Any,
) -> SyncWorld:
    """The world on ``database`` (migrated and empty, e.g. the ``db`` fixture: SQLite or
    PostgreSQL), or on a new SQLite file in ``tmp_path``."""
    if database is None:
        settings = sync_settings(sim, tmp_path)
        database = Database.from_url(settings.resolved_database_url)
        migrate(database.engine)
    else:
        url = database.engine.url.render_as_string(hide_password=False)
        settings = sync_settings(sim, tmp_path, database_url=url)
    runtime = cast(DelegatedRuntime, DelegatedRuntime.from_settings(settings, database))
    runtime.sim = sim
    with database.session() as s:
        org = create_organization(s, "Contoso")
        add_domain(s, org, "contoso.com")
        member_ids = {address: add_member(s, org, address).id for address in members}
        store_service_account(s, runtime, org.id)
        org_id = org.id
        # The service account's consent in the tenant proves the domain (as its Run Test does).
        verify_domain(
            s, org, "contoso.com", method=DomainProof.SERVICE_ACCOUNT, tenant_id=DEMO_TENANT_ID
        )
    world = SyncWorld(
        sim, database, settings, runtime, engine_settings(**engine), org_id, member_ids
    )
    return world


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
