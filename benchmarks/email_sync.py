"""Email Sync benchmark against m365sim (throttling off). Not part of the test suite.

    .venv/bin/python benchmarks/email_sync.py [--sizes 20000,50000] [--runs 5] [--small 5000]
                                              [--sdk-sample 3000] [--latency-runs 3]
                                              [--postgres URL]

m365sim runs in its own process, answering at once (no latency model) but in step 3: what
is measured is m365sync against the fastest client of the same API. Measured, in one run:

1. ``m365sync --help``: the command line's start-up, the median of several runs; and the
   start-up floor: a new Python importing the modules a first sync loads (listed from a
   real ``m365sync sync`` of a small mailbox) and running nothing, which no whole command
   can beat; beside each size's medians, that floor plus the bare loop;
2. for each size (a mailbox of that many messages, on a warm m365sim), ``--runs`` rounds
   of three, one after the other: a bare httpx + orjson loop paging the Inbox's delta with
   the same ``$select``, ``Prefer`` and page size (storing nothing), in a process of its
   own with the garbage collector tuned as m365sync's, its token, modules and connection
   at hand before its clock starts; the first Email Sync of that mailbox inside a child
   process that, like a worker that has run before, synced a small mailbox first (its
   modules loaded, its first statements compiled, the app's token held), timed around the
   sync alone (the in-process rate); and the whole ``m365sync sync --mailbox ...
   --feature email`` command on a new database, timed from launch to exit (start-up,
   migration check, token, the sync and the closing checkpoint included). Each round's
   sync and command are compared with that round's bare loop, and the medians with the
   median bare loop: on a shared machine one run can be much faster or slower than the
   next;
3. the smallest size again with m365sim's realistic latency model (every answer delayed
   as ``m365sync demo``'s m365sim delays it): bare loop and whole command, ``--latency-runs``
   rounds: what a user meets against a remote Microsoft 365;
4. Graph requests of a first sync (delta pages + one window count per folder) from
   ``/_sim/requests``;
5. the whole command again with nothing changed (its requests: none to Entra ID);
6. 10 new messages: time and requests, small vs large mailbox (in a warm child, as in 2);
7. memory of a first sync, small vs large mailbox, each in a fresh (warmed) process: the
   peak RSS during the sync minus the RSS before it, and (separate, untimed runs) tracemalloc's
   peak of Python allocations;
8. msgraph-sdk paging the same delta (on a sample: it is slow), last.

The product's database is SQLite (a new file per product), or with ``--postgres URL`` a new
database per product on that PostgreSQL server (dropped at the end).

m365sync's modules are byte-compiled first, as an installed package is, so start-up is not
charged for compiling them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import compileall
import json
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

TENANT_ID = "6f1c2f4e-3b1a-4c1e-9a51-0c0ffee00001"
SERVICE_APP = "11111111-2222-4333-8444-000000000001"
SERVICE_SECRET = "Zx8Q~demo.service-account.secret-value-0001"
CONTACTS = [{"name": f"Buyer {i}", "address": f"buyer{i}@fabrikam.com"} for i in range(20)]
PAGE = 1000
BIG_MAILBOXES = ("adele@contoso.com", "diego@contoso.com", "grady@contoso.com")
# Synced (untimed) by each in-process run before the mailbox it times; a member of every
# product database the benchmark makes.
WARM_MAILBOX = "isaiah@contoso.com"
WARM_MESSAGES = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sim(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m365sim",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            # Microsoft's network time is not what is measured: the product and the bare loop
            # both page the same folder as fast as m365sim answers.
            "--latency",
            "none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(
                f"{url}/_sim/config",
                verify=ssl.create_default_context(cafile=str(data_dir / "ca.pem")),
            )
            return proc, url
        except (httpx.HTTPError, OSError, ssl.SSLError):
            time.sleep(0.2)
    raise RuntimeError("m365sim did not start")


def database_name(work: Path) -> str:
    """The name of the ``--postgres`` database made for the product in ``work``."""
    return f"m365sync_bench_{work.name}".replace("-", "_")


def fresh_database(work: Path, postgres: str | None) -> str:
    """The URL of a new, empty database for one product: a SQLite file in ``work``, or a
    database made on the ``--postgres`` server (named after ``work``; dropped first when a
    run left it behind)."""
    if postgres is None:
        return f"sqlite:///{work / 'm365sync.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = database_name(work)
    engine = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(postgres).set(database=name).render_as_string(hide_password=False)


def drop_databases(postgres: str, names: list[str]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for name in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def setup_product(
    sim_url: str, sim_dir: Path, work: Path, mailboxes: list[str], postgres: str | None = None
) -> dict[str, Any]:
    """A migrated database (SQLite, or a new one on the ``postgres`` server) with Contoso,
    its members, the service account and the CRM contacts the generated mail comes from.
    Returns what a child process needs."""
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
    from m365sync.sync.models import SyncSettings

    work.mkdir(parents=True, exist_ok=True)
    settings_values = {
        "data_dir": str(work),
        "database_url": fresh_database(work, postgres),
        "secret_key": base64.b64encode(os.urandom(32)).decode(),
        "authority_host": sim_url,
        "graph_url": f"{sim_url}/v1.0",
        "ca_bundle": str(sim_dir / "ca-bundle.pem"),
    }
    settings = Settings(**settings_values)
    database = Database.from_url(settings.resolved_database_url)
    migrate(database.engine)
    runtime = ConnectionRuntime.from_settings(settings, database)
    members: dict[str, str] = {}
    with database.session() as s:
        org = create_organization(s, "Contoso")
        add_domain(s, org, "contoso.com")
        verify_domain(
            s, org, "contoso.com", method=DomainProof.SERVICE_ACCOUNT, tenant_id=TENANT_ID
        )
        for address in mailboxes:
            members[address] = add_member(s, org, address).id
        account = ServiceAccount(
            id=str(__import__("uuid").uuid4()),
            organization_id=org.id,
            name="bench",
            kind=ConnectionKind.OFFICE365,
            credential_type=CredentialType.SECRET,
            client_id=SERVICE_APP,
            tenant_id=TENANT_ID,
            status=ConnectionStatus.ACTIVE,
            enabled_features=["email", "calendar"],
        )
        runtime.seal(account, "secret_sealed", SERVICE_SECRET)
        s.add(account)
        s.add(SyncSettings(organization_id=org.id, mail_folders=["inbox", "sentitems"]))
        for c in CONTACTS:
            s.add(CrmContact(organization_id=org.id, email=c["address"]))
    database.dispose()
    return {"settings": settings_values, "members": members}


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Linux: reset VmHWM to the current RSS (``/proc/self/clear_refs``, value 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_sync(config_path: str, mailbox: str, trace_memory: bool = False) -> None:
    """Run one Email Sync unit and print its counts, time and memory (a child process that
    has synced ``WARM_MAILBOX`` first, untimed).

    Memory is the sync's own: the peak RSS during the sync minus the RSS just before it
    (Linux VmHWM, reset before the sync), and with ``trace_memory`` the peak of Python
    allocations (tracemalloc; slower, so those runs are not timed)."""
    from m365sync.connections.runtime import ConnectionRuntime
    from m365sync.db.session import Database
    from m365sync.settings import Settings
    from m365sync.sync.features import SyncFeature
    from m365sync.sync.service import sync_member

    config = json.loads(Path(config_path).read_text())
    settings = Settings(**config["settings"])
    database = Database.from_url(settings.resolved_database_url)
    runtime = ConnectionRuntime.from_settings(settings, database)
    engine = Settings(sync_page_size=PAGE, sync_jitter_seconds=0)

    import tracemalloc

    from m365sync.workers.process import tune_garbage_collector

    async def sync(address: str) -> Any:
        return await sync_member(
            database, runtime, config["members"][address], SyncFeature.EMAIL, settings=engine
        )

    async def run() -> tuple[Any, float, float, int, bool]:
        try:
            # A worker that has synced before, as the bare loop has its token and its modules
            # before its clock starts: what a process loads or compiles on first use, and the
            # app's token, come from a small mailbox's sync first.
            warm = await sync(WARM_MAILBOX)
            assert warm.outcome == "ok", warm.error
            peak_reset = _reset_peak_rss()
            rss_before = _status_kb("VmRSS") or 0
            if trace_memory:
                tracemalloc.start()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = await sync(mailbox)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            return result, elapsed, cpu, rss_before, peak_reset
        finally:
            await runtime.aclose()

    tune_garbage_collector()  # as m365sync serve, m365sync sync and Celery workers do
    result, elapsed, cpu, rss_before, peak_reset = asyncio.run(run())
    traced_peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    peak_kb = _status_kb("VmHWM") if peak_reset else None
    if peak_kb is None:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "outcome": result.outcome,
                "error": result.error,
                "items": result.progress.items,
                "logged": result.progress.logged,
                "pages": result.progress.pages,
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "rss_before_mb": rss_before / 1024,
                "peak_rss_delta_mb": (peak_kb - rss_before) / 1024,
                "traced_peak_mb": traced_peak / 2**20,
            }
        )
    )


def run_child(config_path: Path, mailbox: str, *flags: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(config_path), mailbox, *flags],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def token(client: httpx.AsyncClient, sim_url: str) -> str:
    """An app-only token for the service account."""
    response = await client.post(
        f"{sim_url}/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SERVICE_APP,
            "client_secret": SERVICE_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    return str(response.json()["access_token"])


def message_select() -> str:
    """The fields Email Sync asks for, taken from the product so the two can't drift apart:
    every field asked for is one m365sim (and Graph) must render in each message of each
    page."""
    from m365sync.microsoft.mail import MESSAGE_FIELDS

    return ",".join(MESSAGE_FIELDS)


async def bare_loop(
    sim_url: str, verify: ssl.SSLContext, mailbox: str, select: str
) -> tuple[int, float, float]:
    """Page the Inbox's delta, storing nothing: how many messages, the wall time and the
    CPU time of the loop. Its modules, its token and its connection (the token's: m365sim
    answers Entra ID and Graph on one port) are at hand before its clock starts."""
    count = 0
    async with httpx.AsyncClient(verify=verify, timeout=60) as client:
        headers = {
            "Authorization": f"Bearer {await token(client, sim_url)}",
            "Prefer": (
                f'IdType="ImmutableId", odata.maxpagesize={PAGE}, outlook.body-content-type="text"'
            ),
        }
        url: str | None = (
            f"{sim_url}/v1.0/users/{mailbox}/mailFolders/inbox/messages/delta?$select={select}"
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        while url:
            data = orjson.loads((await client.get(url, headers=headers)).content)
            count += len(data["value"])
            url = data.get("@odata.nextLink")
    return count, time.perf_counter() - started, time.process_time() - cpu_started


def run_bare_loop(sim_url: str, ca_file: Path, mailbox: str) -> tuple[int, float, float]:
    """``bare_loop`` in a new process that has loaded httpx and orjson and nothing else,
    its garbage collector tuned as m365sync's (``bare_child``).

    Until run 10 the loop ran in this process and paid for the benchmark's own heap: the
    product's modules and databases set up here made every cyclic garbage collection that
    the loop's parsed pages set off walk them too, and a loop that parses page N before it
    asks for page N+1 waits for that. For 20,000 messages it took 0.74 s with m365sync's
    modules merely imported (0.62 s with them frozen out of the collector's sight), and
    about 0.9 s in whole benchmark runs: a slower baseline, which flattered the product."""
    out = subprocess.run(
        [sys.executable, __file__, "--bare", sim_url, str(ca_file), mailbox, message_select()],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    return int(result["count"]), float(result["seconds"]), float(result["cpu_seconds"])


def bare_child(sim_url: str, ca_file: str, mailbox: str, select: str) -> None:
    # The garbage collector tuned as every m365sync process that syncs tunes its own: with
    # CPython's defaults the parsed pages set off collection after collection, and the loop
    # took about 8 % longer.
    from m365sync.workers.process import tune_garbage_collector

    tune_garbage_collector()
    verify = ssl.create_default_context(cafile=ca_file)
    count, seconds, cpu = asyncio.run(bare_loop(sim_url, verify, mailbox, select))
    print(json.dumps({"count": count, "seconds": seconds, "cpu_seconds": cpu}))


async def sdk_loop(sim_url: str, sim_dir: Path, mailbox: str, limit: int) -> tuple[int, float]:
    from azure.identity.aio import ClientSecretCredential
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphServiceClient
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph_core import GraphClientFactory

    credential = ClientSecretCredential(
        TENANT_ID,
        SERVICE_APP,
        SERVICE_SECRET,
        authority=sim_url.removeprefix("https://"),
        disable_instance_discovery=True,
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(sim_dir / "ca.pem")), timeout=120
        )
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{sim_url}/v1.0"
    sdk = GraphServiceClient(request_adapter=adapter)
    config = RequestConfiguration()
    config.headers.add("Prefer", f"odata.maxpagesize={PAGE}")
    config.headers.add("Prefer", 'outlook.body-content-type="text"')
    delta = sdk.users.by_user_id(mailbox).mail_folders.by_mail_folder_id("inbox").messages.delta
    count = 0
    started = time.perf_counter()
    try:
        result = await delta.get(request_configuration=config)
        while result is not None:
            count += len(result.value or [])
            if count >= limit or not result.odata_next_link:
                break
            result = await delta.with_url(result.odata_next_link).get(request_configuration=config)
    finally:
        await credential.close()
    return count, time.perf_counter() - started


def command_env(config_path: Path) -> dict[str, str]:
    """The environment ``m365sync`` runs in: the product's settings as ``M365SYNC_*``, the
    engine tuned as the in-process sync is (page size, no start-up jitter)."""
    config = json.loads(config_path.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("M365SYNC_")}
    env.update({f"M365SYNC_{k.upper()}": str(v) for k, v in config["settings"].items()})
    env["M365SYNC_SYNC_PAGE_SIZE"] = str(PAGE)
    env["M365SYNC_SYNC_JITTER_SECONDS"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def run_command(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run ``m365sync *args`` to completion; its wall time (launch to exit), its CPU time
    (user + system, all threads) and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "m365sync", *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"m365sync {' '.join(args)} failed: {out.stdout}{out.stderr}")
    return elapsed, cpu, out.stdout


def modules_loaded_by(env: dict[str, str], *args: str) -> list[str]:
    """The modules ``m365sync *args`` has loaded when it exits, in the order it loaded
    them."""
    fd, listing = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    code = (
        "import atexit, json, runpy, sys\n"
        "def dump():\n"
        f"    with open({listing!r}, 'w') as f:\n"
        "        json.dump(list(sys.modules), f)\n"
        "atexit.register(dump)\n"
        f"sys.argv = ['m365sync', *{list(args)!r}]\n"
        "runpy.run_module('m365sync', run_name='__main__', alter_sys=True)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    names: list[str] = json.loads(Path(listing).read_text())
    os.unlink(listing)
    return [n for n in names if not n.endswith("__main__") and n != "__mp_main__"]


def import_floor(env: dict[str, str], modules: list[str], runs: int = 7) -> tuple[list[float], int]:
    """Wall times of a new Python that imports ``modules`` and exits, the cyclic garbage
    collector off as the command line has it while a command loads: what any command that
    runs this code pays before its first line of work, however fast that work is. Also
    how many of ``modules`` could not be imported on their own (a floor that skipped many
    would be too low)."""
    code = (
        "import gc, importlib\n"
        "gc.disable()\n"
        "failed = 0\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed += 1\n"
        "print(failed)\n"
    )
    times, failed = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - started)
        failed = int(out.stdout.strip())
    return sorted(times), failed


def byte_compile() -> None:
    import m365sync

    for path in m365sync.__path__:
        compileall.compile_dir(path, quiet=2)


def main() -> None:
    from m365sim.latency import LATENCY_PROFILES

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20000,50000", help="mailbox sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="rounds per size")
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--sdk-sample", type=int, default=3_000)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run the product on PostgreSQL: a server URL whose user may create databases "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres); default SQLite",
    )
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=3,
        help="rounds of bare loop and whole command with m365sim's realistic latency (0: none)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    byte_compile()
    root = Path(tempfile.mkdtemp(prefix="m365sync-bench-"))
    made: list[str] = []  # databases made on --postgres, dropped at the end
    sim_dir = root / "sim"
    proc, sim_url = start_sim(sim_dir)
    ca_file = sim_dir / "ca.pem"
    verify = ssl.create_default_context(cafile=str(ca_file))
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        os.environ[name] = str(sim_dir / "ca-bundle.pem")
    control = httpx.Client(base_url=sim_url, verify=verify, timeout=300)
    mailboxes = dict(zip(sizes, BIG_MAILBOXES, strict=False))
    small = "alex@contoso.com"
    big = mailboxes[max(sizes)]
    rows: list[tuple[str, str]] = []

    def graph_requests() -> list[dict[str, Any]]:
        log = control.get("/_sim/requests").json()["value"]
        control.delete("/_sim/requests")
        return [r for r in log if not r["path"].startswith("/_sim")]

    def product(tag: str, members: list[str]) -> Path:
        config = setup_product(
            sim_url, sim_dir, root / tag, [*members, WARM_MAILBOX], args.postgres
        )
        if args.postgres:
            made.append(database_name(root / tag))
        path = root / tag / "config.json"
        path.write_text(json.dumps(config))
        return path

    try:
        control.patch(
            "/_sim/config", json={"throttling_enabled": False, "delta_replay": False}
        ).raise_for_status()
        generated = ((m, n) for n, m in mailboxes.items())
        for mailbox, count in (*generated, (small, args.small), (WARM_MAILBOX, WARM_MESSAGES)):
            control.post(
                f"/_sim/mailboxes/{mailbox}/messages/generate",
                # Inside the default 30-day backfill window: more than Graph's 5,000-message
                # limit for a filtered delta, so the first sync reads the folder unfiltered.
                json={"count": count, "correspondents": CONTACTS, "days": 25, "seed": 1},
            ).raise_for_status()

        help_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        helps = sorted(run_command(help_env, "--help")[0] for _ in range(7))
        rows.append(
            (
                "m365sync --help (start-up)",
                f"median {statistics.median(helps):.2f} s ({', '.join(f'{t:.2f}' for t in helps)})",
            )
        )

        # The floor under any whole command: Python started and the modules a first sync
        # loads imported (measured on a 200-message first sync of its own).
        loaded = modules_loaded_by(
            command_env(product("modules", [])),
            "sync",
            "--mailbox",
            WARM_MAILBOX,
            "--feature",
            "email",
        )
        floors, unimportable = import_floor(help_env, loaded)
        floor = statistics.median(floors)
        rows.append(
            (
                "start-up floor",
                f"median {floor:.2f} s ({', '.join(f'{t:.2f}' for t in floors)}): Python and the "
                f"{len(loaded)} modules a sync loads ({unimportable} not importable alone), "
                "imported and nothing run",
            )
        )

        first_runs: dict[int, dict[str, Any]] = {}
        first_configs: dict[int, Path] = {}
        for size, mailbox in mailboxes.items():
            run_bare_loop(sim_url, ca_file, mailbox)  # warm m365sim's caches
            bare_s: list[float] = []
            sync_s: list[float] = []
            command_s: list[float] = []
            for run in range(args.runs):
                n, seconds, bare_cpu = run_bare_loop(sim_url, ca_file, mailbox)
                assert n >= size, (n, size)  # a seeded mailbox holds a few more
                bare_s.append(seconds)
                config = product(f"sync-{size}-{run}", [mailbox, small])
                first = run_child(config, mailbox)
                assert first["items"] == n, (first, n)
                sync_s.append(first["seconds"])
                first_runs.setdefault(size, first)
                first_configs.setdefault(size, config)
                env = command_env(product(f"command-{size}-{run}", [mailbox]))
                elapsed, cpu, _ = run_command(
                    env, "sync", "--mailbox", mailbox, "--feature", "email"
                )
                command_s.append(elapsed)
                rows.append(
                    (
                        f"{size:,} messages, round {run + 1}",
                        f"bare {seconds:.2f} s ({n / seconds:,.0f} msg/s); in-process sync "
                        f"{first['seconds']:.2f} s ({seconds / first['seconds']:.2f}x); "
                        f"whole command {elapsed:.2f} s ({seconds / elapsed:.2f}x)",
                    )
                )
                rows.append(
                    (
                        "  CPU time (user + system)",
                        f"bare {bare_cpu:.2f} s; in-process sync {first['cpu_seconds']:.2f} s; "
                        f"whole command {cpu:.2f} s",
                    )
                )
            bare, sync, command = (statistics.median(v) for v in (bare_s, sync_s, command_s))
            rows.append(
                (
                    f"{size:,} messages, medians",
                    f"bare {bare:.2f} s = {n / bare:,.0f} msg/s; in-process "
                    f"{n / sync:,.0f} msg/s = {bare / sync:.2f}x; whole command {command:.2f} s "
                    f"= {bare / command:.2f}x (--help {statistics.median(helps):.2f} s)",
                )
            )
            # A command whose pages took no longer than the loop's, with nothing but its
            # imports before them and nothing after: the best ratio it could reach here.
            rows.append(
                (
                    "  start-up floor + bare loop",
                    f"{floor + bare:.2f} s = {bare / (floor + bare):.2f}x; the command spends "
                    f"{command - floor - bare:.2f} s beyond both",
                )
            )

        if args.latency_runs > 0:
            # The same comparison as a user meets it against Microsoft: every answer takes the
            # time m365sim's realistic latency model gives it (as ``m365sync demo`` runs it).
            size, mailbox = min(mailboxes.items())
            control.patch("/_sim/config", json=LATENCY_PROFILES["realistic"]).raise_for_status()
            bare_s, command_s = [], []
            for run in range(args.latency_runs):
                n, seconds, _ = run_bare_loop(sim_url, ca_file, mailbox)
                bare_s.append(seconds)
                env = command_env(product(f"latency-{size}-{run}", [mailbox]))
                elapsed, _, _ = run_command(env, "sync", "--mailbox", mailbox, "--feature", "email")
                command_s.append(elapsed)
            control.patch("/_sim/config", json=LATENCY_PROFILES["none"]).raise_for_status()
            bare, command = statistics.median(bare_s), statistics.median(command_s)
            rounds = (f"{b / c:.2f}x" for b, c in zip(bare_s, command_s, strict=True))
            rows.append(
                (
                    f"{size:,} messages, realistic latency",
                    f"bare {bare:.2f} s; whole command {command:.2f} s = {bare / command:.2f}x "
                    f"(medians of {args.latency_runs}; rounds {', '.join(rounds)})",
                )
            )

        # Requests of a first sync, then the whole command again with nothing changed.
        control.delete("/_sim/requests")
        env = command_env(product("requests", [big]))
        run_command(env, "sync", "--mailbox", big, "--feature", "email")
        graph = [r for r in graph_requests() if r["path"].startswith("/v1.0")]
        inbox_pages = -(-max(sizes) // PAGE)
        counts = [r for r in graph if not r["path"].endswith("/delta")]
        delta = [r for r in graph if r["path"].endswith("/delta")]
        filtered = [r for r in delta if "filter" in r["query"]]
        rows.append(
            (
                f"first sync of {max(sizes):,}: requests",
                f"{len(graph)} = {len(delta)} delta pages ({inbox_pages} Inbox, "
                f"{len(delta) - inbox_pages} Sent Items; {len(filtered)} filtered) "
                f"+ {len(counts)} window counts (1 per folder)",
            )
        )
        elapsed, cpu, _ = run_command(env, "sync", "--mailbox", big, "--feature", "email")
        again = graph_requests()
        entra = [r for r in again if not r["path"].startswith("/v1.0")]
        rows.append(
            (
                "whole command again, nothing changed",
                f"{elapsed:.2f} s ({cpu:.2f} s CPU); {len(again) - len(entra)} Graph requests "
                "for 2 folders, "
                f"{len(entra)} to Entra ID",
            )
        )

        small_first = run_child(first_configs[max(sizes)], small)
        for mailbox, size in ((small, args.small), (big, max(sizes))):
            for i in range(10):
                control.post(
                    f"/_sim/mailboxes/{mailbox}/messages",
                    json={"from": CONTACTS[i]["address"], "subject": f"change {i}"},
                ).raise_for_status()
            control.delete("/_sim/requests")
            changed = run_child(first_configs[max(sizes)], mailbox)
            graph = [r for r in graph_requests() if r["path"].startswith(f"/v1.0/users/{mailbox}/")]
            rows.append(
                (
                    f"10 new messages, {size:,}-message mailbox",
                    f"{changed['items']} items, {len(graph)} requests, "
                    f"{changed['seconds'] * 1000:.0f} ms (the sync, in a warm process)",
                )
            )

        first = first_runs[max(sizes)]
        traced: dict[int, dict[str, Any]] = {}
        for mailbox, size in ((small, args.small), (big, max(sizes))):
            traced[size] = run_child(product(f"mem-{size}", [mailbox]), mailbox, "--trace-memory")
        for size, run in ((args.small, small_first), (max(sizes), first)):
            rows.append(
                (
                    f"first sync of {size:,}: memory",
                    f"peak RSS +{run['peak_rss_delta_mb']:.1f} MB over "
                    f"{run['rss_before_mb']:.0f} MB at start; Python allocations peak "
                    f"{traced[size]['traced_peak_mb']:.1f} MB (tracemalloc run)",
                )
            )
        small_traced = traced[args.small]["traced_peak_mb"]

        def peak(run: dict[str, Any]) -> float:
            return float(run["rss_before_mb"] + run["peak_rss_delta_mb"])

        rows.append(
            (
                f"  {max(sizes):,} vs {args.small:,}",
                f"process peak RSS {peak(first):.0f} vs {peak(small_first):.0f} MB "
                f"({peak(first) / peak(small_first) - 1:+.0%}); RSS delta "
                f"{first['peak_rss_delta_mb'] / small_first['peak_rss_delta_mb'] - 1:+.0%}, "
                f"Python peak {traced[max(sizes)]['traced_peak_mb'] / small_traced - 1:+.0%}",
            )
        )
        if args.sdk_sample > 0:  # last, so that nothing else is measured after it
            try:
                n, seconds = asyncio.run(sdk_loop(sim_url, sim_dir, big, args.sdk_sample))
                rows.append(
                    (
                        "msgraph-sdk paging (sample)",
                        f"{n:,} msgs in {seconds:.1f} s = {n / seconds:,.0f} msg/s",
                    )
                )
            except Exception as exc:
                rows.append(("msgraph-sdk paging", f"failed: {exc!r}"[:120]))
    finally:
        control.close()
        proc.terminate()
        proc.wait(10)
        if args.postgres and made:
            drop_databases(args.postgres, made)
    width = max(len(k) for k, _ in rows)
    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"database: {'PostgreSQL (--postgres)' if args.postgres else 'SQLite'}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        bare_child(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_sync(sys.argv[2], sys.argv[3], trace_memory="--trace-memory" in sys.argv)
    else:
        main()
