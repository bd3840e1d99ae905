"""The scheduling world: a Contoso organization booking against m365sim.

Members, a service account with the four Mail/Calendars permissions (the demo tenant's
consented app, tokens through MSAL), the product's app as ``create_app`` builds it (the
scheduling wiring it installed is ``app.state.scheduling``), and helpers that change the
world through m365sim's control API. The ``world`` and ``client`` fixtures are imported by
the conftest of each folder whose tests book meetings.
"""

from __future__ import annotations

import re
import ssl
import threading
import time as _time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from m365sim.listener import tcp_listener
from m365sim.server import SimServer
from m365sync.connections.models import (
    ConnectionStatus,
)
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm.models import ActivityKind, CrmActivity
from m365sync.db.session import Database
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof, Organization
from m365sync.scheduling.models import Booking
from m365sync.scheduling.schemas import MeetingTypeInput
from m365sync.scheduling.service import SchedulingService
from m365sync.scheduling.tokens import BookingTokens
from m365sync.settings import Settings
from m365sync.web.app import create_app
from m365sync.web.pages.scheduling import SchedulingWiring
from support.connections import store_service_account
from support.demo import DEMO_TENANT_ID, demo_settings

PACIFIC = ZoneInfo("America/Los_Angeles")


def next_weekday(weekday: int, *, at_least_days: int = 7, zone: ZoneInfo = PACIFIC) -> date:
    """A date ``weekday`` (Monday = 0) at least ``at_least_days`` from today in ``zone``."""
    day = datetime.now(UTC).astimezone(zone).date() + timedelta(days=at_least_days)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = PACIFIC) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@dataclass
class SchedulingWorld:
    sim: SimServer
    database: Database
    settings: Settings
    runtime: ConnectionRuntime
    organization: Organization
    members: dict[str, str] = field(default_factory=dict)  # address -> member id
    control: httpx.Client = field(init=False)
    app: FastAPI = field(init=False)

    def __post_init__(self) -> None:
        self.control = httpx.Client(
            base_url=self.sim.url,
            verify=ssl.create_default_context(cafile=self.sim.tls.ca_bundle),
            timeout=30,
        )
        self.app = create_app(settings=self.settings, database=self.database, runtime=self.runtime)

    # -- the product ---------------------------------------------------------------------
    @property
    def scheduling(self) -> SchedulingWiring:
        """What ``create_app`` installed: calendars, link signing, the recovery job."""
        wiring: SchedulingWiring = self.app.state.scheduling
        return wiring

    @property
    def tokens(self) -> BookingTokens:
        return self.scheduling.tokens

    def service(self, session: Session) -> SchedulingService:
        return self.scheduling.service(session)

    def meeting_type(self, slug: str, hosts: list[str], **values: Any) -> str:
        data = MeetingTypeInput.model_validate(
            {
                "name": values.pop("name", slug.replace("-", " ").title()),
                "slug": slug,
                "host_member_ids": [self.members[h] for h in hosts],
                "minimum_notice_minutes": 0,
                "horizon_days": 365,
                **values,
            }
        )
        with self.database.session() as session:
            created = self.service(session).create_meeting_type(
                self.organization.id, data, created_by=None
            )
            return created.id

    def bookings(self) -> list[Booking]:
        with self.database.session() as session:
            return list(session.query(Booking).order_by(Booking.start))

    def crm_events(self) -> list[CrmActivity]:
        with self.database.session() as session:
            return list(
                session.query(CrmActivity).filter(
                    CrmActivity.organization_id == self.organization.id,
                    CrmActivity.kind == ActivityKind.EVENT,
                )
            )

    # -- the world (m365sim control API) -------------------------------------------------
    def add_event(self, mailbox: str, **body: Any) -> dict[str, Any]:
        response = self.control.post(f"/_sim/mailboxes/{mailbox}/events", json=body)
        response.raise_for_status()
        return dict(response.json())

    def clear_calendar(self, mailbox: str) -> None:
        """Remove the demo seed's events, so each test states the calendar it needs."""
        for event in self.sim_events(mailbox):
            response = self.control.delete(
                f"/_sim/mailboxes/{mailbox}/events/{event['id']}",
                params={"sendInvitations": "false"},
            )
            if response.status_code != 404:  # an occurrence goes with its series
                response.raise_for_status()

    def sim_events(self, mailbox: str) -> list[dict[str, Any]]:
        response = self.control.get(f"/_sim/mailboxes/{mailbox}/events")
        response.raise_for_status()
        return list(response.json()["value"])

    def invitations(self, **filters: str) -> list[dict[str, Any]]:
        response = self.control.get("/_sim/invitations", params=filters)
        response.raise_for_status()
        return list(response.json()["value"])


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def book_form(
    client: TestClient | httpx.Client, path: str, start: datetime, **fields: str
) -> httpx.Response:
    data = {
        "start": start.astimezone(UTC).isoformat(),
        "tz": fields.pop("tz", "Europe/Berlin"),
        "name": fields.pop("name", "Pat Buyer"),
        "email": fields.pop("email", "pat@fabrikam.example"),
        **fields,
    }
    return client.post(path, data=data, follow_redirects=False)


def token_from(location: str) -> str:
    return urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]


def links_on(page: str) -> dict[str, str]:
    return {
        kind: token_from(m.group(1))
        for kind, m in (
            ("cancel", re.search(r'href="([^"]*/book/_/cancel/[^"]+)"', page)),
            ("reschedule", re.search(r'href="([^"]*/book/_/reschedule/[^"]+)"', page)),
        )
        if m
    }


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def build_world(
    sim: SimServer, db: Database, tmp_path: Path, *, features: list[str] | None = None
) -> SchedulingWorld:
    settings = demo_settings(sim, tmp_path / "data")
    runtime = ConnectionRuntime.from_settings(settings, db)
    enabled = features if features is not None else ["email", "calendar", "scheduling"]
    with db.session() as session:
        organization = orgs.create_organization(
            session, "Contoso", slug=f"contoso-{uuid.uuid4().hex[:6]}"
        )
        orgs.add_domain(session, organization, "contoso.com")
        orgs.verify_domain(
            session,
            organization,
            "contoso.com",
            method=DomainProof.SERVICE_ACCOUNT,
            tenant_id=DEMO_TENANT_ID,
        )
        members = {
            address: orgs.add_member(session, organization, address, name=name).id
            for address, name in (
                ("adele@contoso.com", "Adele Vance"),
                ("alex@contoso.com", "Alex Wilber"),
                ("lee@contoso.com", "Lee Gu"),
                ("diego@contoso.com", "Diego Siciliani"),
            )
        }
        if "scheduling" in enabled:
            store_service_account(session, runtime, organization.id, enabled_features=enabled)
        else:  # consent for Calendars only
            store_service_account(
                session,
                runtime,
                organization.id,
                enabled_features=enabled,
                granted_permissions=["Calendars.Read", "Calendars.ReadWrite"],
                status=ConnectionStatus.PARTIAL,
                missing_permissions={
                    "email": ["Mail.Read", "Mail.ReadWrite"],
                    "scheduling": ["Mail.Read", "Mail.ReadWrite"],
                },
            )
    world = SchedulingWorld(
        sim=sim,
        database=db,
        settings=settings,
        runtime=runtime,
        organization=organization,
        members=members,
    )
    for address in members:
        world.clear_calendar(address)
    return world


@pytest.fixture
def world(sim: SimServer, db: Database, tmp_path: Path) -> Iterator[SchedulingWorld]:
    """The scheduling world on the ``db`` fixture's database (SQLite, then PostgreSQL)."""
    built = build_world(sim, db, tmp_path)
    try:
        yield built
    finally:
        built.control.close()


@pytest.fixture
def client(world: SchedulingWorld) -> Iterator[TestClient]:
    """The world's app, through Starlette's test client (its lifespan runs)."""
    with TestClient(world.app) as test_client:
        yield test_client


def slots_on_page(html: str) -> list[datetime]:
    """The slot start times a booking page offers (each carries its own UTC offset)."""
    return [datetime.fromisoformat(v) for v in re.findall(r'data-slot="([^"]+)"', html)]


def local_times(html: str, day: date) -> list[str]:
    return [s.strftime("%H:%M") for s in slots_on_page(html) if s.date() == day]


def recurring_weekdays(
    subject: str, first_day: date, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """A Graph body for a Mon-Fri series at ``start``-``end`` Pacific time from ``first_day``."""
    return {
        "subject": subject,
        "start": {
            "dateTime": f"{first_day.isoformat()}T{start}:00",
            "timeZone": "Pacific Standard Time",
        },
        "end": {
            "dateTime": f"{first_day.isoformat()}T{end}:00",
            "timeZone": "Pacific Standard Time",
        },
        "recurrence": {
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            },
            "range": {"type": "noEnd", "startDate": first_day.isoformat()},
        },
        "sendInvitations": False,
        **extra,
    }


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port (for real concurrent clients and the
    browser); yields its base URL."""
    sock = tcp_listener("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    deadline = _time.monotonic() + 15
    while not server.started:
        if _time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        _time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
