"""Fleet benchmark: the scaled-out processes on PostgreSQL and Redis against m365sim, with
throttling on. Not part of the test suite; not run in CI.

    .venv/bin/python benchmarks/fleet.py [--mailboxes 50 | --full] [--messages 300]
        [--events 20] [--workers 1,2] [--concurrency 4] [--delay-ms 0]
        [--notifications 40] [--shared-limits on|off]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0]

``--full`` is the issue's size: 1,000 mailboxes. For each worker count in ``--workers``, a
fresh m365sim (in its own process, with its realistic latency model and throttling on;
``--delay-ms`` holds every Graph answer back longer) and a fresh PostgreSQL database are
seeded with the mailboxes, then ``m365sync web``, ``m365sync scheduler`` and that many
``m365sync worker`` processes (``--concurrency`` pool processes each) are started, and
measured:

1. first syncs of every mailbox (Email and Calendar): wall time, mailboxes per hour;
2. Graph requests and 429s by the limit named (from the workers' ``/metrics``);
3. CPU-seconds of the workers per 1,000 messages, peak RSS of one pool process;
4. the time against the minimum Outlook's per-mailbox limits allow (10,000 requests per
   10 minutes, 4 at once, per app per mailbox): mailboxes are limited independently, so
   the busiest mailbox's requests at that rate, or the time Graph took to answer them
   spread over 4 at once;
5. change notifications on (subscriptions made by the scheduler): ``--notifications``
   messages delivered one at a time, p50 and p95 from delivery to the CRM activity.

``--shared-limits off`` runs the processes with ``M365SYNC_GRAPH_SHARED_LIMITS=false`` (each
process keeps Outlook's per-mailbox limits alone), to see what sharing them saves.

Numbers go in docs/deploy.md ("Sizing").
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

TENANT_ID = "6f1c2f4e-3b1a-4c1e-9a51-0c0ffee00001"
SERVICE_APP = "11111111-2222-4333-8444-000000000001"
SERVICE_SECRET = "Zx8Q~demo.service-account.secret-value-0001"
CONTACTS = [f"buyer{i}@fabrikam.com" for i in range(20)]
OUTLOOK_REQUESTS_PER_SECOND = 10_000 / 600
FORMAT = "%Y-%m-%dT%H:%M:%S"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"not within {timeout:.0f} s: {what}")


# -- m365sim -------------------------------------------------------------------------------


def start_sim(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, httpx.Client]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m365sim",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"

    def up() -> bool:
        try:
            httpx.get(
                f"{url}/_sim/config",
                verify=ssl.create_default_context(cafile=str(data_dir / "ca.pem")),
            )
        except (httpx.HTTPError, OSError, ssl.SSLError):
            return False
        return True

    wait_until("m365sim starts", up, 60)
    control = httpx.Client(
        base_url=url,
        verify=ssl.create_default_context(cafile=str(data_dir / "ca.pem")),
        timeout=120,
    )
    return process, url, control


def seed(
    control: httpx.Client, mailboxes: list[str], messages: int, events: int, delay_ms: int
) -> int:
    """The mailboxes' users, mail and meetings; returns how many messages were made."""
    # Throttling and m365sim's realistic latency model on (its defaults); http webhooks are
    # m365sim's local-development knob (Microsoft requires https).
    control.patch(
        "/_sim/config", json={"throttling_enabled": True, "allow_http_notification_urls": True}
    ).raise_for_status()

    def one(number: int, address: str) -> None:
        control.post(
            f"/_sim/tenants/{TENANT_ID}/users",
            json={"userPrincipalName": address, "displayName": f"Rep {number}"},
        ).raise_for_status()
        control.post(
            f"/_sim/mailboxes/{address}/messages/generate",
            json={"count": messages, "correspondents": CONTACTS, "days": 25, "seed": number + 1},
        ).raise_for_status()
        for event in range(events):
            start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
                days=1 + event % 20, hours=event % 8
            )
            control.post(
                f"/_sim/mailboxes/{address}/events",
                json={
                    "subject": f"Meeting {event}",
                    "start": {"dateTime": start.strftime(FORMAT), "timeZone": "UTC"},
                    "end": {
                        "dateTime": (start + timedelta(minutes=30)).strftime(FORMAT),
                        "timeZone": "UTC",
                    },
                    "attendees": [{"emailAddress": {"address": CONTACTS[event % len(CONTACTS)]}}],
                },
            ).raise_for_status()

    # Seeded a few mailboxes at a time (the control API answers each request on its own).
    with ThreadPoolExecutor(max_workers=6) as pool:
        for done in [pool.submit(one, n, a) for n, a in enumerate(mailboxes)]:
            done.result()
    if delay_ms:
        control.post(
            "/_sim/faults",
            json={
                "rate": 1.0,
                "seed": 1,
                "kinds": ["delay"],
                "delayMs": delay_ms,
                "pathRegex": "/v1.0/",
            },
        ).raise_for_status()
    control.delete("/_sim/requests").raise_for_status()
    return messages * len(mailboxes)


# -- the product ---------------------------------------------------------------------------


def setup_database(
    url: str, sim_url: str, sim_dir: Path, work: Path, mailboxes: list[str]
) -> dict[str, str]:
    from m365sync.connections.models import (
        ConnectionKind,
        ConnectionStatus,
        CredentialType,
        ServiceAccount,
    )
    from m365sync.connections.runtime import ConnectionRuntime
    from m365sync.crm.models import CrmContact
    from m365sync.db.migrate import migrate
    from m365sync.db.session import Database
    from m365sync.organizations.models import DomainProof
    from m365sync.organizations.service import (
        add_domain,
        add_member,
        create_organization,
        verify_domain,
    )
    from m365sync.settings import Settings

    env = {
        "M365SYNC_DATA_DIR": str(work),
        "M365SYNC_DATABASE_URL": url,
        "M365SYNC_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "M365SYNC_AUTHORITY_HOST": sim_url,
        "M365SYNC_GRAPH_URL": f"{sim_url}/v1.0",
        "M365SYNC_CA_BUNDLE": str(sim_dir / "ca-bundle.pem"),
    }
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=work,
        database_url=url,
        secret_key=env["M365SYNC_SECRET_KEY"],
        authority_host=sim_url,
        graph_url=f"{sim_url}/v1.0",
        ca_bundle=sim_dir / "ca-bundle.pem",
    )
    database = Database.from_url(url)
    migrate(database.engine)
    runtime = ConnectionRuntime.from_settings(settings, database)
    with database.session() as s:
        org = create_organization(s, "Contoso")
        add_domain(s, org, "contoso.com")
        verify_domain(
            s, org, "contoso.com", method=DomainProof.SERVICE_ACCOUNT, tenant_id=TENANT_ID
        )
        for address in mailboxes:
            add_member(s, org, address)
        account = ServiceAccount(
            id=str(uuid.uuid4()),
            organization_id=org.id,
            name="bench",
            kind=ConnectionKind.OFFICE365,
            credential_type=CredentialType.SECRET,
            client_id=SERVICE_APP,
            tenant_id=TENANT_ID,
            status=ConnectionStatus.ACTIVE,
            enabled_features=["email", "calendar"],
            granted_permissions=[
                "Mail.Read",
                "Mail.ReadWrite",
                "Calendars.Read",
                "Calendars.ReadWrite",
            ],
        )
        runtime.seal(account, "secret_sealed", SERVICE_SECRET)
        s.add(account)
        for address in CONTACTS:
            s.add(CrmContact(organization_id=org.id, email=address))
    database.dispose()
    return env


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "m365sync", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def group(self, name: str) -> list[int]:
        """The pids of a process and its pool processes (its session)."""
        leader = self.running[name].pid
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == leader:
                        pids.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return pids

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def scrape(port: int) -> dict[str, float]:
    """``name{labels}`` → value, from one /metrics."""
    values: dict[str, float] = {}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = values.get(key, 0.0) + float(value)
    return values


def run_fleet(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    from m365sync.crm.models import ActivityKind, CrmActivity
    from m365sync.db.session import Database
    from m365sync.sync.models import GraphSubscription, SyncUnit, UnitStatus

    mailboxes = [f"rep{i:04d}@contoso.com" for i in range(args.mailboxes)]
    work = Path(tempfile.mkdtemp(prefix="m365sync-fleet-"))
    sim_dir = work / "sim"
    sim, sim_url, control = start_sim(sim_dir)
    admin = create_engine(make_url(args.postgres), isolation_level="AUTOCOMMIT")
    name = f"m365sync_fleet_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    queue = f"m365sync-fleet-{uuid.uuid4().hex[:8]}"
    processes: Processes | None = None
    try:
        made = seed(control, mailboxes, args.messages, args.events, args.delay_ms)
        web_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "M365SYNC_CONFIG_FILE": str(work / "none.env"),
            **setup_database(url, sim_url, sim_dir, work / "data", mailboxes),
            "M365SYNC_CELERY_BROKER_URL": args.redis,
            "M365SYNC_CELERY_QUEUE": queue,
            "M365SYNC_WORKER_CONCURRENCY": str(args.concurrency),
            "M365SYNC_CELERY_QUEUE_LIMIT": str(max(8, 2 * workers * args.concurrency)),
            "M365SYNC_SCHEDULER_INTERVAL_SECONDS": "1",
            "M365SYNC_WEBHOOK_URL": f"http://127.0.0.1:{web_port}/webhooks/microsoft",
            "M365SYNC_LOG_LEVEL": "WARNING",
            "M365SYNC_GRAPH_SHARED_LIMITS": "true" if args.shared_limits == "on" else "false",
        }
        logs = work / "logs"
        logs.mkdir()
        processes = Processes(env, logs)
        database = Database.from_url(url)
        processes.start("web", "web", "--host", "127.0.0.1", "--port", str(web_port))
        metrics_ports = []
        for number in range(workers):
            port = free_port()
            metrics_ports.append(port)
            processes.start(f"worker-{number}", "worker", "--metrics-port", str(port))

        def idle_workers() -> list[int]:
            return [pid for n in range(workers) for pid in processes.group(f"worker-{n}")]

        def started_up(last: list[float] = [-1.0]) -> bool:  # noqa: B006 (the previous reading)
            pids = idle_workers()
            now = cpu_seconds(pids)
            settled = len(pids) == workers * (1 + args.concurrency) and now - last[0] < 0.05
            last[0] = now
            time.sleep(0.5)
            return settled

        wait_until("the workers start and settle", started_up, 120)
        cpu_before = cpu_seconds(idle_workers())  # start-up (imports, forks) left out
        processes.start("scheduler", "scheduler")

        def units_done() -> bool:
            with database.session() as s:
                statuses = list(s.scalars(select(SyncUnit.status)))
            return len(statuses) == 2 * len(mailboxes) and all(
                st == UnitStatus.ACTIVE for st in statuses
            )

        first_sync = wait_until("every first sync", units_done, args.timeout)
        worker_pids = idle_workers()
        cpu = cpu_seconds(worker_pids) - cpu_before
        peak = peak_rss_mb(worker_pids)
        metrics: dict[str, float] = {}
        for port in metrics_ports:
            for key, value in scrape(port).items():
                metrics[key] = metrics.get(key, 0.0) + value
        requests = int(
            sum(v for k, v in metrics.items() if k.startswith("m365sync_graph_requests_total"))
        )
        throttled = {
            re.sub(r'.*reason="([^"]*)".*', r"\1", k): int(v)
            for k, v in metrics.items()
            if k.startswith("m365sync_graph_throttled_total{")
        }
        log = control.get("/_sim/requests").json()["value"]
        per_mailbox: dict[str, int] = {}
        busy_ms: dict[str, float] = {}  # how long Graph took to answer the mailbox's requests
        for entry in log:
            if entry.get("mailbox"):
                per_mailbox[entry["mailbox"]] = per_mailbox.get(entry["mailbox"], 0) + 1
                busy_ms[entry["mailbox"]] = busy_ms.get(entry["mailbox"], 0.0) + float(
                    entry.get("durationMs") or 0.0
                )
        answered_429 = sum(1 for entry in log if entry.get("status") == 429)
        # Mailboxes are limited independently, so the fleet can be done no sooner than its
        # busiest mailbox: its requests at 10,000 per 10 minutes, or its answers' time with
        # 4 in flight at once, whichever is longer.
        graph_minimum = max(
            (
                max(count / OUTLOOK_REQUESTS_PER_SECOND, busy_ms[mailbox] / 4 / 1000)
                for mailbox, count in per_mailbox.items()
            ),
            default=0.0,
        )

        latencies: list[float] = []
        if args.notifications:

            def subscribed() -> bool:
                with database.session() as s:
                    healthy = s.scalar(
                        select(func.count())
                        .select_from(GraphSubscription)
                        .where(GraphSubscription.healthy)
                    )
                return int(healthy or 0) >= 3 * len(mailboxes)  # Inbox, Sent Items, Calendar

            wait_until("subscriptions for every mailbox", subscribed, 600)
            for number in range(args.notifications):
                subject = f"Notified {number} {uuid.uuid4().hex[:6]}"
                mailbox = mailboxes[number % len(mailboxes)]
                delivered = time.monotonic()
                control.post(
                    f"/_sim/mailboxes/{mailbox}/messages",
                    json={"from": CONTACTS[0], "subject": subject},
                ).raise_for_status()

                def logged(subject: str = subject) -> bool:
                    with database.session() as s:
                        return (
                            s.scalar(
                                select(func.count())
                                .select_from(CrmActivity)
                                .where(
                                    CrmActivity.kind == ActivityKind.EMAIL,
                                    CrmActivity.subject == subject,
                                )
                            )
                            or 0
                        ) > 0

                wait_until(f"'{subject}' logged", logged, 60)
                latencies.append(time.monotonic() - delivered)
        database.dispose()
        return {
            "workers": workers,
            "limits shared": args.shared_limits,
            "pool processes": workers * args.concurrency,
            "mailboxes": len(mailboxes),
            "messages": made,
            "first syncs (s)": round(first_sync, 1),
            "mailboxes per hour": round(len(mailboxes) / first_sync * 3600),
            "graph requests": requests,
            "429s by limit": throttled,
            "429s m365sim answered": answered_429,
            "cpu-s per 1,000 messages": round(cpu / max(made, 1) * 1000, 2),
            "peak RSS of a worker process (MB)": round(peak, 1),
            "Outlook's per-mailbox minimum (s)": round(graph_minimum, 1),
            "notification p50 (s)": round(statistics.median(latencies), 3) if latencies else None,
            "notification p95 (s)": (
                round(statistics.quantiles(latencies, n=20)[-1], 3) if len(latencies) >= 2 else None
            ),
        }
    finally:
        if processes is not None:
            processes.stop()
        sim.terminate()
        sim.wait(30)
        control.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        import redis

        redis.Redis.from_url(args.redis).delete(queue)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--full", action="store_true", help="1,000 mailboxes (the issue's fleet).")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--workers", default="1,2", help="Worker process counts to compare.")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--delay-ms", type=int, default=0, help="Extra delay on every Graph answer (ms)."
    )
    parser.add_argument("--notifications", type=int, default=40)
    parser.add_argument(
        "--shared-limits",
        choices=["on", "off"],
        default="on",
        help="Outlook's per-mailbox limits kept together in Redis (on) or by each process.",
    )
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if args.full:
        args.mailboxes = 1000
    for count in (int(n) for n in args.workers.split(",")):
        result = run_fleet(args, count)
        print(f"\n{count} worker process(es):")
        for key, value in result.items():
            print(f"  {key:<36} {value}")


if __name__ == "__main__":
    main()
