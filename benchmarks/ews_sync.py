"""Email Sync over EWS benchmark against m365sim's Exchange Server (throttling off). Not part
of the test suite.

    .venv/bin/python benchmarks/ews_sync.py [--messages 50000] [--small 5000] [--bare-runs 2]

m365sim runs in its own process, as an Exchange Server 2019 holding every mailbox; an
Exchange service account impersonates them. Measured, in one run:

1. first Email Sync of an N-message Inbox over EWS, end to end (SyncFolderItems, GetItem,
   parse, match, store), vs a bare exchangelib ``sync_items`` loop on the same Inbox with
   the same fields and 512 changes a page (storing nothing), in a process of its own with
   the garbage collector tuned as m365sync's. The bare loop runs ``--bare-runs`` times
   before the sync and as many after; the sync is compared with their median;
2. EWS requests of the first sync per page (``/_sim/requests``);
3. memory of a first sync, small vs large mailbox, each in a fresh process: the peak RSS
   during the sync minus the RSS before it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from email_sync import (
    CONTACTS,
    TENANT_ID,
    _reset_peak_rss,
    _status_kb,
    start_sim,
)

SERVICE_ACCOUNT, SERVICE_PASSWORD = "admin@contoso.com", "Demo-Admin-1!"
FIELDS = [
    "message_id",
    "subject",
    "author",
    "to_recipients",
    "cc_recipients",
    "bcc_recipients",
    "datetime_received",
    "datetime_sent",
    "is_draft",
    "text_body",
]
PAGE = 512


def setup_product(sim_url: str, sim_dir: Path, work: Path, mailboxes: list[str]) -> dict[str, Any]:
    """A migrated SQLite database with Contoso, its members, an Exchange service account and
    the CRM contacts the generated mail comes from."""
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
    values = {
        "data_dir": str(work),
        "database_url": f"sqlite:///{work / 'm365sync.db'}",
        "secret_key": base64.b64encode(os.urandom(32)).decode(),
        "authority_host": sim_url,
        "graph_url": f"{sim_url}/v1.0",
        "ca_bundle": str(sim_dir / "ca-bundle.pem"),
    }
    settings = Settings(**values)
    database = Database.from_url(settings.resolved_database_url)
    migrate(database.engine)
    runtime = ConnectionRuntime.from_settings(settings, database)
    members: dict[str, str] = {}
    with database.session() as s:
        org = create_organization(s, "Contoso")
        add_domain(s, org, "contoso.com")
        verify_domain(s, org, "contoso.com", method=DomainProof.OPERATOR, tenant_id=TENANT_ID)
        for address in mailboxes:
            members[address] = add_member(s, org, address).id
        account = ServiceAccount(
            id=str(uuid.uuid4()),
            organization_id=org.id,
            name="bench",
            kind=ConnectionKind.EXCHANGE,
            credential_type=CredentialType.PASSWORD,
            ews_url=f"{sim_url}/EWS/Exchange.asmx",
            username=SERVICE_ACCOUNT,
            status=ConnectionStatus.ACTIVE,
            enabled_features=["email"],
        )
        runtime.seal(account, "password_sealed", SERVICE_PASSWORD)
        s.add(account)
        s.add(SyncSettings(organization_id=org.id, mail_folders=["inbox", "sentitems"]))
        for c in CONTACTS:
            s.add(CrmContact(organization_id=org.id, email=c["address"]))
    database.dispose()
    return {"settings": values, "members": members}


def child_sync(config_path: str, mailbox: str) -> None:
    """One Email Sync unit over EWS in a fresh process: counts, time, memory."""
    import asyncio

    from m365sync.connections.runtime import ConnectionRuntime
    from m365sync.db.session import Database
    from m365sync.settings import Settings
    from m365sync.sync.features import SyncFeature
    from m365sync.sync.service import sync_member
    from m365sync.workers.process import tune_garbage_collector

    config = json.loads(Path(config_path).read_text())
    settings = Settings(**config["settings"])
    database = Database.from_url(settings.resolved_database_url)
    runtime = ConnectionRuntime.from_settings(settings, database)
    engine = Settings(sync_page_size=PAGE, sync_jitter_seconds=0)

    async def run() -> Any:
        try:
            return await sync_member(
                database, runtime, config["members"][mailbox], SyncFeature.EMAIL, settings=engine
            )
        finally:
            await runtime.aclose()

    tune_garbage_collector()
    peak_reset = _reset_peak_rss()
    rss_before = _status_kb("VmRSS") or 0
    started = time.perf_counter()
    result = asyncio.run(run())
    elapsed = time.perf_counter() - started
    peak_kb = (_status_kb("VmHWM") if peak_reset else None) or rss_before
    print(
        json.dumps(
            {
                "outcome": result.outcome,
                "error": result.error,
                "items": result.progress.items,
                "logged": result.progress.logged,
                "pages": result.progress.pages,
                "seconds": elapsed,
                "peak_rss_delta_mb": (peak_kb - rss_before) / 1024,
            }
        )
    )


def run_child(config_path: Path, mailbox: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(config_path), mailbox],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bare_loop(sim_url: str, mailbox: str) -> tuple[int, float]:
    """exchangelib as its documentation shows it, ``sync_items`` over the Inbox, in a new
    process that loads exchangelib and nothing of m365sync (``bare_child``): run in this
    process, whose heap holds the product's modules after the first sync's set-up, every
    garbage collection its parsed items set off would walk them too (see
    ``email_sync.run_bare_loop``)."""
    out = subprocess.run(
        [sys.executable, __file__, "--bare", sim_url, mailbox],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["count"]), float(result["seconds"])


def bare_child(sim_url: str, mailbox: str) -> None:
    from exchangelib import IMPERSONATION, NTLM, Account, Configuration, Credentials
    from exchangelib.protocol import close_connections

    from m365sync.workers.process import tune_garbage_collector

    tune_garbage_collector()  # as m365sync's processes tune theirs (``email_sync.bare_child``)
    config = Configuration(
        service_endpoint=f"{sim_url}/EWS/Exchange.asmx",
        credentials=Credentials(SERVICE_ACCOUNT, SERVICE_PASSWORD),
        auth_type=NTLM,
    )
    account = Account(mailbox, config=config, autodiscover=False, access_type=IMPERSONATION)
    started = time.perf_counter()
    count = sum(1 for _ in account.inbox.sync_items(only_fields=FIELDS, max_changes_returned=PAGE))
    elapsed = time.perf_counter() - started
    close_connections()
    print(json.dumps({"count": count, "seconds": elapsed}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--bare-runs", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="m365sync-ews-bench-"))
    sim_dir = root / "sim"
    proc, sim_url = start_sim(sim_dir)
    os.environ["REQUESTS_CA_BUNDLE"] = str(sim_dir / "ca-bundle.pem")  # the bare loop's trust
    import ssl

    control = httpx.Client(
        base_url=sim_url,
        verify=ssl.create_default_context(cafile=str(sim_dir / "ca.pem")),
        timeout=600,
    )
    big, small = "adele@contoso.com", "alex@contoso.com"
    rows: list[tuple[str, str]] = []
    try:
        control.patch("/_sim/config", json={"throttling_enabled": False}).raise_for_status()
        control.patch(
            "/_sim/tenants/contoso.com/exchange",
            json={
                "flavour": "onpremises",
                "version": "Exchange2019",
                "roleAssignments": [{"user": SERVICE_ACCOUNT}],
            },
        ).raise_for_status()
        for mailbox, count in ((big, args.messages), (small, args.small)):
            control.post(
                f"/_sim/mailboxes/{mailbox}/messages/generate",
                json={"count": count, "correspondents": CONTACTS, "days": 25, "seed": 1},
            ).raise_for_status()

        rates: list[float] = []

        def bare(label: str) -> None:
            n, seconds = bare_loop(sim_url, big)
            rates.append(n / seconds)
            rows.append((label, f"{n:,} msgs in {seconds:.1f} s = {n / seconds:,.0f} msg/s"))

        for run in range(args.bare_runs):
            bare(f"bare exchangelib sync_items loop, run {run + 1} (no storage)")
        config = root / "main" / "config.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps(setup_product(sim_url, sim_dir, root / "main", [big, small])))
        control.delete("/_sim/requests")
        first = run_child(config, big)
        ews = [
            r
            for r in control.get("/_sim/requests").json()["value"]
            if r["path"].startswith("/EWS/")
        ]
        for run in range(args.bare_runs, 2 * args.bare_runs):
            bare(f"bare exchangelib sync_items loop, run {run + 1} (no storage)")
        median = statistics.median(rates)
        rate = first["items"] / first["seconds"]
        rows.append(
            (
                "m365sync first Email Sync over EWS, end to end",
                f"{first['items']:,} msgs ({first['logged']:,} logged) in "
                f"{first['seconds']:.1f} s = {rate:,.0f} msg/s ({rate / median:.2f}x the bare "
                f"loops' median, {median:,.0f} msg/s) [{first['outcome']}]",
            )
        )
        authenticated = [r for r in ews if r["status"] == 200]
        rows.append(
            (
                "  EWS requests of the first sync",
                f"{len(authenticated)} answered (+{len(ews) - len(authenticated)} NTLM "
                f"handshake 401s) for {first['pages']} pages = "
                f"{len(authenticated) / max(1, first['pages']):.2f} requests a page "
                "(SyncFolderItems + GetItem a page; a few GetFolder once per mailbox)",
            )
        )
        small_config = root / "small" / "config.json"
        small_config.parent.mkdir(parents=True)
        small_config.write_text(
            json.dumps(setup_product(sim_url, sim_dir, root / "small", [big, small]))
        )
        small_run = run_child(small_config, small)
        rows.append(
            (
                "memory of a first sync (peak RSS over the start)",
                f"{args.small:,} msgs: {small_run['peak_rss_delta_mb']:.1f} MB; "
                f"{args.messages:,} msgs: {first['peak_rss_delta_mb']:.1f} MB",
            )
        )
    finally:
        control.close()
        proc.terminate()
        proc.wait()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        bare_child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_sync(sys.argv[2], sys.argv[3])
    else:
        main()
