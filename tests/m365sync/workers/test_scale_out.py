"""The scaled-out product as an operator runs it: ``m365sync web``, ``m365sync scheduler``
and two ``m365sync worker`` processes on PostgreSQL and Redis, against m365sim. A worker
and the scheduler are SIGKILLed in the middle of first syncs; a new scheduler is started.
In the end every mailbox is complete, nothing is doubled, and the web app says so."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sync.crm.models import ActivityKind, CrmActivity, CrmEmailCopy
from m365sync.db import Database, migrate
from m365sync.sync.models import SyncCursor, SyncUnit, UnitStatus
from support.sync_world import SyncWorld, build_world

POSTGRES_URL = os.environ.get(
    "M365SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MAILBOXES = [f"rep{i}@contoso.com" for i in range(6)]
CONTACTS = [f"buyer{i}@fabrikam.com" for i in range(4)]
MESSAGES_PER_MAILBOX = 120
DEADLINE_SECONDS = 90


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (_reachable("127.0.0.1", 6379) and _reachable("127.0.0.1", 5432))
        and not os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"),
        reason="needs PostgreSQL and Redis",
    ),
]


def wait_until(what: str, predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of its own (the processes share it)."""
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"m365sync_scale_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Fleet:
    """The product's processes, each in a session of its own (SIGKILL takes a worker's pool
    processes with it, as a machine that dies would)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "m365sync", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def owner_of(self, pid: int) -> str | None:
        """The process (by name) whose session holds ``pid``."""
        try:
            session = os.getsid(pid)
        except ProcessLookupError:
            return None
        return next((n for n, p in self.processes.items() if p.pid == session), None)

    def stop(self) -> None:
        """Throwaway processes: killed, not waited for to finish their work."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


@contextmanager
def running_fleet(env: dict[str, str], logs: Path, queue: str) -> Iterator[Fleet]:
    """A ``Fleet`` stopped (and its queue emptied) at the end; its logs printed if the test
    failed."""
    fleet = Fleet(env, logs)
    try:
        yield fleet
    except BaseException:
        print(fleet.log_tail())
        raise
    finally:
        fleet.stop()
        redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(queue)


@pytest.fixture
def world(sim: SimServer, tmp_path: Path, postgres_database: str) -> Iterator[SyncWorld]:
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
        tenant["users"] = [
            *tenant["users"],
            *({"userPrincipalName": m, "displayName": m.split("@")[0]} for m in MAILBOXES),
        ]
    sim.state.reset()
    load_seed(sim.state, data)
    database = Database.from_url(postgres_database)
    migrate(database.engine)
    w = build_world(sim, tmp_path, MAILBOXES, database=database)
    yield w
    w.control.close()
    database.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(world: SyncWorld, tmp_path: Path, queue: str) -> dict[str, str]:
    settings = world.settings
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_DATABASE_URL": settings.resolved_database_url,
        "M365SYNC_SECRET_KEY": str(settings.secret_key),
        "M365SYNC_AUTHORITY_HOST": settings.authority_host,
        "M365SYNC_GRAPH_URL": settings.graph_url,
        "M365SYNC_CA_BUNDLE": str(settings.ca_bundle),
        "M365SYNC_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "M365SYNC_CELERY_QUEUE": queue,
        "M365SYNC_CELERY_QUEUE_LIMIT": "4",
        "M365SYNC_WORKER_CONCURRENCY": "1",
        "M365SYNC_SYNC_LEASE_SECONDS": "4",
        "M365SYNC_SYNC_PAGE_SIZE": "10",
        "M365SYNC_SYNC_JITTER_SECONDS": "0",
        "M365SYNC_SCHEDULER_INTERVAL_SECONDS": "0.5",
        "M365SYNC_SCHEDULER_ELECTION_SECONDS": "3",
        "M365SYNC_GRAPH_BACKOFF_BASE_SECONDS": "0.05",
        "M365SYNC_GRAPH_BACKOFF_MAX_SECONDS": "2",
        "M365SYNC_LOG_LEVEL": "INFO",
    }


def _units(world: SyncWorld) -> list[SyncUnit]:
    with world.database.session() as session:
        units = list(session.scalars(select(SyncUnit)))
        session.expunge_all()
        return units


def _all_synced(world: SyncWorld) -> bool:
    units = _units(world)
    return len(units) == 2 * len(MAILBOXES) and all(
        u.status == UnitStatus.ACTIVE and u.last_success_at is not None for u in units
    )


def _running_mid_first_sync(world: SyncWorld) -> list[SyncUnit]:
    """Email units leased by a worker, part-way through their first sync (a page stored, a
    next page to read)."""
    with world.database.session() as session:
        units = list(
            session.scalars(
                select(SyncUnit)
                .join(SyncCursor, SyncCursor.unit_id == SyncUnit.id)
                .where(SyncUnit.lease_owner.is_not(None), SyncCursor.next_link.is_not(None))
            )
        )
        session.expunge_all()
        return units


def _truth(world: SyncWorld) -> dict[str, set[str]]:
    """internetMessageId → the members whose mailbox holds it (all involve a contact)."""
    truth: dict[str, set[str]] = {}
    for mailbox in MAILBOXES:
        for folder in ("inbox", "sentitems"):
            for message in world.sim_messages(mailbox, folder):
                people = [
                    message.get("from") or {},
                    *message.get("toRecipients", []),
                    *message.get("ccRecipients", []),
                ]
                if any((p.get("emailAddress") or {}).get("address") in CONTACTS for p in people):
                    truth.setdefault(message["internetMessageId"], set()).add(
                        world.members[mailbox]
                    )
    return truth


def _crm(world: SyncWorld) -> tuple[dict[str, set[str]], int, int]:
    with world.database.session() as session:
        rows = session.execute(
            select(CrmActivity.external_id, CrmEmailCopy.member_id).join(
                CrmEmailCopy, CrmEmailCopy.activity_id == CrmActivity.id
            )
        )
        held: dict[str, set[str]] = {}
        copies = 0
        for external_id, member_id in rows:
            held.setdefault(external_id, set()).add(member_id)
            copies += 1
        activities = int(
            session.scalar(
                select(func.count())
                .select_from(CrmActivity)
                .where(CrmActivity.kind == ActivityKind.EMAIL)
            )
            or 0
        )
    return held, copies, activities


def test_killed_worker_and_scheduler_everything_completes_once(
    world: SyncWorld, tmp_path: Path
) -> None:
    for address in CONTACTS:
        world.add_contact(address)
    for number, mailbox in enumerate(MAILBOXES):
        world.generate(
            mailbox, MESSAGES_PER_MAILBOX, correspondents=CONTACTS, days=10, seed=number + 1
        )
    world.sim_config(throttling_enabled=False)
    # Every delta page takes a moment, as Graph's do: first syncs last a few seconds.
    world.control.post(
        "/_sim/faults",
        json={
            "rate": 1.0,
            "seed": 1,
            "kinds": ["delay"],
            "delayMs": 120,
            "pathRegex": "/messages/delta",
        },
    ).raise_for_status()
    truth = _truth(world)
    assert len(truth) >= len(MAILBOXES) * MESSAGES_PER_MAILBOX * 0.9

    queue = f"m365sync-test-{uuid.uuid4().hex[:8]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    started = time.monotonic()
    with running_fleet(_environment(world, tmp_path, queue), logs, queue) as fleet:
        fleet.start("web", "web", "--host", "127.0.0.1", "--port", str(port))
        fleet.start("scheduler-1", "scheduler")
        metrics_ports = {"worker-1": _free_port(), "worker-2": _free_port()}
        for name, metrics_port in metrics_ports.items():
            fleet.start(name, "worker", "--metrics-port", str(metrics_port))

        web = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

        def ready() -> bool:
            try:
                return web.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until("the web app is ready (database, broker, key, schema)", ready, 45)

        # A worker and the scheduler die while a first sync is part-way through.
        victims: list[SyncUnit] = []

        def a_worker_mid_run() -> bool:
            for unit in _running_mid_first_sync(world):
                pid = int(str(unit.lease_owner).split(":")[1])
                if (fleet.owner_of(pid) or "").startswith("worker"):
                    victims.append(unit)
                    return True
            return False

        wait_until("a worker is part-way through a first sync", a_worker_mid_run, 45)
        victim = victims[0]
        victim_worker = fleet.owner_of(int(str(victim.lease_owner).split(":")[1]))
        assert victim_worker is not None
        fleet.kill(victim_worker)
        fleet.kill("scheduler-1")
        fleet.start("scheduler-2", "scheduler")

        wait_until(
            "every unit synced",
            lambda: _all_synced(world),
            DEADLINE_SECONDS - (time.monotonic() - started),
        )

        held, copies, activities = _crm(world)
        assert held == truth  # every message logged, linked to exactly its mailboxes
        assert activities == len(truth)  # one activity per message: nothing doubled
        assert copies == sum(len(m) for m in truth.values())
        unit = next(u for u in _units(world) if u.id == victim.id)
        assert unit.lease_owner is None and unit.counts.get("total_items", 0) > 0

        metrics = web.get("/metrics").text
        assert 'm365sync_units{feature="email",stage="idle",status="active"} 6.0' in metrics
        assert "m365sync_units_due 0.0" in metrics
        lease = re.search(r"^m365sync_scheduler_lease_seconds (\S+)$", metrics, re.MULTILINE)
        assert lease is not None and float(lease.group(1)) > 0  # the new scheduler leads
        assert web.get("/readyz").json()["status"] == "ready"
        survivor = next(n for n in metrics_ports if n != victim_worker)
        counted = httpx.get(f"http://127.0.0.1:{metrics_ports[survivor]}/metrics").text
        runs = re.search(
            r'^m365sync_unit_runs_total\{feature="email",outcome="ok"\} (\S+)$', counted, re.M
        )
        assert runs is not None and float(runs.group(1)) >= 1  # its pool process counted
        assert 'm365sync_graph_requests_total{status="2xx"}' in counted
        assert time.monotonic() - started < DEADLINE_SECONDS


def _add_meetings(world: SyncWorld, mailbox: str, count: int) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    for number in range(count):
        begins = start + timedelta(days=number % 10, hours=number % 8)
        world.control.post(
            f"/_sim/mailboxes/{mailbox}/events",
            json={
                "subject": f"Meeting {number}",
                "start": {"dateTime": begins.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (begins + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
                "attendees": [{"emailAddress": {"address": CONTACTS[number % len(CONTACTS)]}}],
            },
        ).raise_for_status()


def _throttled(port: int) -> dict[str, float]:
    """A worker's 429s by the limit Graph named (its ``/metrics``)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        reason: float(value)
        for reason, value in re.findall(
            r'^m365sync_graph_throttled_total\{reason="([^"]*)"\} (\S+)$', text, re.MULTILINE
        )
    }


@pytest.mark.realistic_latency
@pytest.mark.parametrize("shared", [True, False], ids=["limits-shared", "each-process-alone"])
def test_workers_keep_each_mailboxs_concurrency_limit_together(
    world: SyncWorld, tmp_path: Path, shared: bool
) -> None:
    """Two workers (two pool processes each) run the Email and Calendar Sync of the same
    mailboxes at once, against Graph's latency. Outlook's in-flight limit per app per
    mailbox is shrunk from 4 to 1 on both sides (m365sim and ``graph_concurrency_per_mailbox``)
    so that two units of one mailbox in two processes are already one request too many.
    Kept together in Redis, the processes draw no MailboxConcurrency 429 at all; each
    process keeping the limit alone (``graph_shared_limits`` off) draws them."""
    for address in CONTACTS:
        world.add_contact(address)
    for number, mailbox in enumerate(MAILBOXES):
        world.generate(mailbox, 60, correspondents=CONTACTS, days=10, seed=number + 1)
        _add_meetings(world, mailbox, 30)
    world.sim_config(throttling_enabled=True, concurrent_requests=1)
    world.clear_requests()
    truth = _truth(world)

    queue = f"m365sync-test-{uuid.uuid4().hex[:8]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **_environment(world, tmp_path, queue),
        "M365SYNC_WORKER_CONCURRENCY": "2",
        "M365SYNC_SYNC_LEASE_SECONDS": "30",
        "M365SYNC_GRAPH_CONCURRENCY_PER_MAILBOX": "1",
        "M365SYNC_GRAPH_SHARED_LIMITS": "true" if shared else "false",
        "M365SYNC_GRAPH_BACKOFF_MAX_SECONDS": "5",
    }
    with running_fleet(env, logs, queue) as fleet:
        metrics_ports = {"worker-1": _free_port(), "worker-2": _free_port()}
        for name, metrics_port in metrics_ports.items():
            fleet.start(name, "worker", "--metrics-port", str(metrics_port))
        fleet.start("scheduler", "scheduler")

        wait_until("every unit synced", lambda: _all_synced(world), 240)

        held, _, activities = _crm(world)
        assert held == truth and activities == len(truth)  # complete, nothing doubled
        with world.database.session() as session:
            meetings = session.scalar(
                select(func.count())
                .select_from(CrmActivity)
                .where(CrmActivity.kind == ActivityKind.EVENT)
            )
        assert meetings == 30 * len(MAILBOXES)
        answered = Counter(record["status"] for record in world.requests())
        throttled = Counter[str]()
        for port in metrics_ports.values():
            throttled.update(_throttled(port))
        if shared:
            assert answered[429] == 0, answered
            assert throttled["MailboxConcurrency"] == 0
        else:
            assert answered[429] > 0, answered  # the limit bites when each keeps it alone
            assert throttled["MailboxConcurrency"] == answered[429]
