"""``m365sync serve``: the web app and JSON API, and — on the embedded defaults — the demo.

The demo starts m365sim in-process with its demo tenant (Contoso), and sfsim with a demo
Salesforce org (Acme, whose Contacts and Leads are the people Contoso's mailboxes write
with, and whose users are Contoso's members), points the settings at them (authority host,
Graph URL, Salesforce login URL, one CA bundle trusting both, the demo "User Connections"
app), seeds a demo organization (domain contoso.com, members with dashboard passwords, the
demo CRM's accounts and contacts, the demo service account — saved through Run Test like an
admin would — and the Salesforce connection, by the JWT bearer flow as the integration
user), and prints the dashboard URL, the demo sign-ins, both emulators' addresses, the demo
app credentials and an admin API token. The app is the whole product
(``m365sync.web.app.create_app``) with the sync workers and the Salesforce jobs running
in-process, so the demo mailboxes start syncing right away and their emails and meetings
appear in Salesforce a moment later. Without the demo, nothing here runs: the embedded
store stays the CRM until an admin connects Salesforce.
This module is the only product code allowed to import m365sim and sfsim.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console

from m365sync.auth import set_password
from m365sync.auth.repository import credential_for_member
from m365sync.connections import service_accounts
from m365sync.connections.run_test import ServiceAccountDraft
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm import salesforce_service
from m365sync.crm.importer import load_demo_crm
from m365sync.db import Database, database_from_settings, migrate
from m365sync.errors import M365SyncError
from m365sync.microsoft.auth import ClientSecret
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.settings import Settings, get_settings
from m365sync.workers.process import HeldStop, tune_garbage_collector

log = logging.getLogger(__name__)
console = Console(soft_wrap=True)

DEMO_ORG = "contoso"
DEMO_SERVICE_ACCOUNT = (
    "11111111-2222-4333-8444-000000000001",
    "Zx8Q~demo.service-account.secret-value-0001",
)
DEMO_USER_APP = ("11111111-2222-4333-8444-000000000003", "Zx8Q~demo.user-connections.secret-0003")
# Dashboard sign-ins (the same passwords as the demo tenant's, so "Sign in with Microsoft"
# works with them too).
DEMO_SIGN_INS = [
    ("admin@contoso.com", "Demo-Admin-1!", "admin"),
    ("adele@contoso.com", "Demo-User-1!", "sales rep"),
]
DEMO_MEMBERS = [
    ("admin@contoso.com", "Megan Bowen", Role.ADMIN),
    ("adele@contoso.com", "Adele Vance", Role.USER),
    ("alex@contoso.com", "Alex Wilber", Role.USER),
    ("diego@contoso.com", "Diego Siciliani", Role.ADMIN),
    ("grady@contoso.com", "Grady Archie", Role.USER),
    ("lee@contoso.com", "Lee Gu", Role.USER),
    ("pradeep@contoso.com", "Pradeep Gupta", Role.USER),
]


# sfsim's demo org (src/sfsim/seeds/demo.yaml): its connected app and integration user.
DEMO_SALESFORCE_APP = "3MVG9sfsim.demo.m365sync.consumer.key.0001"
DEMO_SALESFORCE_USER = "integration@acme.example"
# The people Contoso's demo mailboxes write with (m365sim's demo seed), as Acme's Salesforce
# knows them: contacts of its accounts, and a lead.
DEMO_SALESFORCE_RECORDS: dict[str, list[dict[str, Any]]] = {
    "Account": [
        {"_ref": "tailspin", "Name": "Tailspin Toys", "Website": "https://tailspintoys.com"},
    ],
    "Contact": [
        {
            "FirstName": "Kim",
            "LastName": "Buyer",
            "Email": "kim@fabrikam.com",
            "AccountId": "@fabrikam",
            "Title": "Procurement Lead",
        },
        {
            "FirstName": "Ana",
            "LastName": "Ruiz",
            "Email": "ana.ruiz@fabrikam.com",
            "AccountId": "@fabrikam",
            "Title": "CFO",
        },
        {
            "FirstName": "Nora",
            "LastName": "Northwind",
            "Email": "nora@northwind.example",
            "AccountId": "@northwind",
            "Title": "Head of Operations",
        },
    ],
    "Lead": [
        {
            "FirstName": "Sam",
            "LastName": "Tailspin",
            "Company": "Tailspin Toys",
            "Email": "sam@tailspintoys.com",
            "Title": "Buyer",
        },
    ],
}


def wants_demo(settings: Settings) -> bool:
    """Nothing configured (no database URL, Microsoft's own authority, no user app)."""
    return (
        settings.database_url is None
        and settings.authority_host == Settings.model_fields["authority_host"].default
        and settings.user_app_client_id is None
    )


def start_demo_tenant(settings: Settings) -> tuple[Any, Settings]:
    from m365sim.seed import DEMO_SEED, load_seed, read_seed
    from m365sim.server import SimServer

    server = SimServer(data_dir=settings.data_dir / "m365sim")
    load_seed(server.state, read_seed(DEMO_SEED))
    server.start()
    public_url = f"http://127.0.0.1:{settings.port}"
    tenant = server.state.find_tenant("contoso.com")
    assert tenant is not None, "the demo seed defines contoso.com"
    user_app = tenant.apps[DEMO_USER_APP[0]]
    for path in (
        "/connections/office365/callback",
        "/auth/microsoft/callback",
        "/admin/service-accounts/setup/callback",
    ):
        for base in (public_url, f"http://localhost:{settings.port}"):
            if base + path not in user_app.redirect_uris:
                user_app.redirect_uris.append(base + path)
    demo_settings = settings.model_copy(
        update={
            "authority_host": server.url,
            "graph_url": server.graph_url,
            "ca_bundle": server.tls.ca_bundle,
            "user_app_client_id": DEMO_USER_APP[0],
            "user_app_client_secret": DEMO_USER_APP[1],
            "public_url": public_url,
        }
    )
    return server, demo_settings


def demo_salesforce_seed(port: int) -> dict[str, Any]:
    """sfsim's demo org, with Contoso's members as its users, Contoso's correspondents as
    its contacts and leads, and this server's callback for Connect Salesforce."""
    from sfsim import DEMO_SEED, read_seed

    seed = read_seed(DEMO_SEED)
    for app in seed.get("connectedApps") or []:
        for host in ("127.0.0.1", "localhost"):
            url = f"http://{host}:{port}/salesforce/callback"
            if url not in app["callbackUrls"]:
                app["callbackUrls"].append(url)
    for email, name, _ in DEMO_MEMBERS:
        first, _, last = name.partition(" ")
        local = email.split("@")[0]
        seed["users"].append(
            {
                "username": f"{local}@contoso.acme.example",
                "firstName": first,
                "lastName": last or first,
                "email": email,
                "alias": local[:8],
            }
        )
    for sobject, records in DEMO_SALESFORCE_RECORDS.items():
        seed["records"].setdefault(sobject, []).extend(records)
    return seed


def start_demo_salesforce(settings: Settings) -> tuple[Any, Settings]:
    """sfsim with the demo org; the settings sign in there and trust it (and m365sim)."""
    from sfsim import SfServer, load_seed

    server = SfServer(data_dir=settings.data_dir / "sfsim")
    load_seed(server.state, demo_salesforce_seed(settings.port))
    server.start()
    bundle = settings.data_dir / "demo-ca-bundle.pem"
    trusted = [Path(server.tls.ca_bundle).read_text()]
    if settings.ca_bundle is not None:
        trusted.insert(0, Path(settings.ca_bundle).read_text())
    bundle.write_text("\n".join(trusted))
    return server, settings.model_copy(
        update={"salesforce_login_url": server.url, "ca_bundle": bundle}
    )


def connect_demo_salesforce(settings: Settings, database: Database, box: Any) -> None:
    """Connect the demo organization to the demo org as its integration user (JWT bearer
    with sfsim's public demo key). sfsim keeps its org in memory, so a restarted demo
    meets a new org: what was written to the old one is written again."""
    from sfsim import DEMO_SEED

    with database.session() as session:
        organization = next(o for o in orgs.list_organizations(session) if o.slug == DEMO_ORG)
        overview = salesforce_service.salesforce_overview(session, organization.id)
        if overview.connected and overview.instance_url == settings.salesforce_login_url:
            return
        if overview.connected:
            salesforce_service.forget_salesforce_org(session, organization.id)
        report = salesforce_service.connect_with_jwt(
            session,
            box,
            settings,
            organization.id,
            consumer_key=DEMO_SALESFORCE_APP,
            username=DEMO_SALESFORCE_USER,
            private_key_pem=(DEMO_SEED.parent / "demo-jwt.key").read_text(),
            certificate_pem=(DEMO_SEED.parent / "demo-jwt.crt").read_text(),
        )
    if not report.ok:
        log.warning("the demo Salesforce org: %s", report.verdict)


async def seed_demo_organization(
    settings: Settings, database: Database, runtime: ConnectionRuntime
) -> str:
    """The demo organization (idempotent); returns a new admin API token."""
    with database.session() as session:
        organization = next(
            (o for o in orgs.list_organizations(session) if o.slug == DEMO_ORG), None
        )
        if organization is None:
            organization = orgs.create_organization(session, "Contoso", slug=DEMO_ORG, actor="demo")
            orgs.add_domain(session, organization, "contoso.com", actor="demo")
            load_demo_crm(session, organization.id)
        for email, name, role in DEMO_MEMBERS:
            if not any(m.email == email for m in orgs.list_members(session, organization)):
                orgs.add_member(session, organization, email, name=name, role=role, actor="demo")
        for email, password, _ in DEMO_SIGN_INS:
            member = orgs.get_member(session, organization, email)
            if credential_for_member(session, member.id) is None:
                set_password(session, member, password)
        if not service_accounts.list_service_accounts(session, organization):
            await service_accounts.add_service_account(
                session,
                runtime,
                organization,
                ServiceAccountDraft(
                    client_id=DEMO_SERVICE_ACCOUNT[0],
                    credential=ClientSecret(DEMO_SERVICE_ACCOUNT[1]),
                    test_mailbox="adele@contoso.com",
                    name="Contoso service account (demo)",
                ),
                actor="demo",
            )
        admin = orgs.get_member(session, organization, "admin@contoso.com")
        _, token = orgs.create_api_token(session, organization, admin, name="demo", actor="demo")
    return token


def browser_url(settings: Settings) -> str:
    """Where a person on this machine opens the app (a wildcard address is not one)."""
    host = settings.host
    try:
        if ip_address(host.strip("[]")).is_unspecified:
            host = "127.0.0.1"
    except ValueError:
        pass
    return f"http://{host}:{settings.port}"


class PortBusy(M365SyncError):
    """The address ``serve`` or ``web`` was asked to listen on is taken (or not this
    machine's)."""

    status = 409


def listen_socket(host: str, port: int, *, command: str = "serve") -> socket.socket:
    """The listening socket, bound before anything is printed: a busy port is said at once,
    with how to pick another (``m365sync <command> --port N``), and ``--port 0`` turns into
    the real port the banner shows."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio's own event loop (uvloop's doesn't care) turns
    # Nagle's algorithm off only on connections whose socket says TCP; with it on, a small
    # answer waits about 40 ms for the browser's delayed ACK between headers and body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortBusy(
                f"Port {port} on {host} is already in use (is m365sync already running?).",
                fix=f"Stop the other program, or pick another port: m365sync {command} --port "
                f"{port + 1 if port else 8001} (or --port 0 for any free port).",
            ) from exc
        raise PortBusy(
            f"m365sync can't listen on {host}:{port}: {exc.strerror}.",
            fix="Pick an address of this machine with --host (127.0.0.1 for this machine "
            "only, 0.0.0.0 for every network) and a port above 1023 with --port.",
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_web_server(app: Any, settings: Settings, listener: socket.socket, stop: HeldStop) -> None:
    """Serve ``app`` on ``listener`` (bound by ``listen_socket``) until Ctrl+C or SIGTERM:
    the garbage collector tuned for a long-running process first, then uvicorn, started
    through ``stop`` so that a signal since the banner stops it once started."""
    tune_garbage_collector()
    config = uvicorn.Config(
        app,
        log_level=settings.log_level.lower(),
        # X-Forwarded-For/-Proto only from the proxies the settings trust (none by
        # default), as the rate limits do (m365sync.web.security).
        forwarded_allow_ips=[
            str(ip_network(proxy, strict=False)) for proxy in settings.trusted_proxies
        ],
    )
    stop.run(uvicorn.Server(config), [listener])


def serve_app(
    *, host: str | None = None, port: int | None = None, demo: bool | None = None
) -> None:
    """The web app, JSON API, webhooks and in-process sync workers in one process."""
    settings = get_settings()
    if port is not None or host is not None:
        settings = settings.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
    listener = listen_socket(settings.host, settings.port)
    settings = settings.model_copy(update={"port": listener.getsockname()[1]})
    use_demo = wants_demo(settings) if demo is None else demo
    server = salesforce = None
    if use_demo:
        server, settings = start_demo_tenant(settings)
        salesforce, settings = start_demo_salesforce(settings)
    database = database_from_settings(settings)
    migrate(database.engine)
    runtime = ConnectionRuntime.from_settings(settings, database)

    from m365sync.web.app import create_app

    app = create_app(settings=settings, database=database, runtime=runtime, workers="in-process")
    token = None
    if use_demo:
        token = asyncio.run(seed_demo_organization(settings, database, runtime))
        connect_demo_salesforce(settings, database, runtime.box)
    base = browser_url(settings)
    # From the banner on, Ctrl+C is held until the server runs, never lost (see HeldStop).
    with HeldStop() as stop:
        console.print(
            f"[bold]m365sync[/] is running: open [bold]{base}[/] and sign in.", highlight=False
        )
        console.print(
            f"  JSON API {base}/api/v1 (OpenAPI {base}/api/openapi.json); sync workers: in-process",
            highlight=False,
        )
        if server is not None:
            console.print("[bold]Demo sign-ins[/] (organization Contoso):", highlight=False)
            for email, password, who in DEMO_SIGN_INS:
                console.print(f"  {who:<10} {email:<20} password {password}", highlight=False)
            console.print(
                f"Demo Microsoft 365 tenant (m365sim): {server.url}   "
                f"CA bundle: {server.tls.ca_bundle}",
                highlight=False,
            )
            console.print(
                f"  Service account app: client id {DEMO_SERVICE_ACCOUNT[0]}, secret value "
                f"{DEMO_SERVICE_ACCOUNT[1]}",
                highlight=False,
            )
            console.print(f"  User connections app: client id {DEMO_USER_APP[0]}", highlight=False)
            console.print(
                f"  Admin API token (organization '{DEMO_ORG}'): {token}", highlight=False
            )
        if salesforce is not None:
            console.print(
                f"Demo Salesforce org (sfsim): {salesforce.url}   "
                f"CA bundle (both emulators): {settings.ca_bundle}",
                highlight=False,
            )
            console.print(
                f"  Contoso is connected to it as {DEMO_SALESFORCE_USER}; synced emails and "
                f"meetings open at {salesforce.url}/lightning/r/<Object>/<Id>/view (links in "
                "Activities and Admin → Salesforce)",
                highlight=False,
            )
        try:
            run_web_server(app, settings, listener, stop)
        finally:
            database.dispose()  # a last checkpoint empties SQLite's write-ahead log
            listener.close()
            if server is not None:
                server.stop()
            if salesforce is not None:
                salesforce.stop()
