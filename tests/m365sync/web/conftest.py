"""Fixtures for the dashboard: a migrated SQLite database, the whole product's app (as
``m365sync serve`` builds it, sync workers in-process), organizations and members with
passwords, and (for browser tests) the app served by uvicorn on a free port, a headless
chromium, ``sign_in_as`` and ``screenshot``."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from m365sync.auth import set_password
from m365sync.crm.importer import load_demo_crm
from m365sync.db import Database, migrate
from m365sync.organizations import service as organizations
from m365sync.organizations.models import DomainProof, Member, Organization, Role
from m365sync.settings import Settings
from m365sync.web.app import create_app

PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def web_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings on a temp SQLite file; pointed at m365sim when the test uses ``sim``."""
    microsoft: dict[str, Any] = {}
    if "sim" in request.fixturenames:
        sim = request.getfixturevalue("sim")
        microsoft = {
            "authority_host": sim.url,
            "graph_url": sim.graph_url,
            "ca_bundle": sim.tls.ca_bundle,
            "user_app_client_id": "11111111-2222-4333-8444-000000000003",
            "user_app_client_secret": "Zx8Q~demo.user-connections.secret-0003",
        }
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'web.db'}", **microsoft)


@pytest.fixture
def database(web_settings: Settings) -> Iterator[Database]:
    database = Database.from_url(web_settings.resolved_database_url)
    migrate(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def app(web_settings: Settings, database: Database) -> FastAPI:
    """The product's app with the sync workers running in-process, as ``m365sync serve``
    runs it (they start with the app's lifespan: the live server and ``TestClient``)."""
    return create_app(settings=web_settings, database=database, workers="in-process")


@dataclass
class People:
    database: Database

    def organization(self, name: str, slug: str) -> Organization:
        with self.database.session() as db:
            org = Organization(name=name, slug=slug)
            db.add(org)
        return org

    def member(
        self, org: Organization, email: str, role: Role = Role.USER, name: str = ""
    ) -> Member:
        with self.database.session() as db:
            member = Member(
                organization_id=org.id,
                email=email,
                name=name or email.split("@")[0].title(),
                role=role,
            )
            db.add(member)
            db.flush()
            set_password(db, member, PASSWORD)
        return member

    def domain(self, org: Organization, name: str, *, verified: bool = True) -> None:
        """A domain to sync (as the admin adds it on the Domains page), verified on the
        operator's word unless ``verified=False``."""
        with self.database.session() as db:
            organizations.add_domain(db, org, name, actor="test")
            if verified:
                organizations.verify_domain(
                    db, org, name, method=DomainProof.OPERATOR, actor="test"
                )

    def demo_crm(self, org: Organization) -> None:
        """The CRM accounts and contacts the demo tenant's mail involves."""
        with self.database.session() as db:
            load_demo_crm(db, org.id)


@pytest.fixture
def people(database: Database) -> People:
    return People(database)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/sign-in")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})


def _csrf_of(html: str) -> str:
    return html.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]


@pytest.fixture
def sign_in() -> Callable[..., Any]:
    """``sign_in(client, email, password=PASSWORD)``: the sign-in form, as a person fills it."""
    return _sign_in


@pytest.fixture
def csrf_of() -> Callable[[str], str]:
    """The session's CSRF token, read from a page."""
    return _csrf_of


# --- browser --------------------------------------------------------------------------------


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])), daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(chromium_browser: Any) -> Any:
    return chromium_browser


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    contexts: list[Any] = []

    def open_page() -> Any:
        # m365sim's sign-in pages use its own test CA, which chromium doesn't know.
        context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1366, "height": 820}
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def sim_control(sim: Any) -> Callable[..., Any]:
    """``sim_control(method, path, **kwargs)``: m365sim's control API (``/_sim/...``), the
    way a tenant admin's change (an access policy, a fault) is made in tests."""
    import ssl

    import httpx

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        verify = ssl.create_default_context(cafile=str(sim.tls.ca_bundle))
        response = httpx.request(method, f"{sim.url}{path}", verify=verify, **kwargs)
        assert response.status_code < 400, response.text
        return response

    return call


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., None]:
    """``screenshot(page, name)``: the whole page as {name}.png (``full_page=False``: what
    the window shows, e.g. a scrolled side panel). The README's pictures in docs/screenshots/
    are refreshed with ``M365SYNC_UPDATE_SCREENSHOTS=1 ./scripts/test.sh -m browser``; other
    runs write to the test's temporary directory, so a test run leaves the tree clean."""
    folder = SCREENSHOTS if os.environ.get("M365SYNC_UPDATE_SCREENSHOTS") == "1" else tmp_path

    def take(page: Any, name: str, *, full_page: bool = True) -> None:
        path = folder / f"{name}.png"  # a name may hold a folder: "pages/sign-in-phone"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 0

    return take


@pytest.fixture
def sign_in_as() -> Callable[[Any, str, str], None]:
    """``sign_in_as(page, base_url, email)``: the sign-in form, filled in as a person does."""

    def fill(page: Any, base_url: str, email: str) -> None:
        page.goto(f"{base_url}/sign-in")
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()

    return fill
