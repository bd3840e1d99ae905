"""Salesforce push benchmark against sfsim. Not part of the test suite.

    .venv/bin/python benchmarks/salesforce_push.py [--emails 50000] [--small 2000]
                                                   [--latency-ms 0] [--runs 2]

sfsim runs in its own process, with the demo org plus 20 accounts and 200 contacts. For
each size (``--small``, then ``--emails``), measured:

1. the local store holds N logged emails (each from one of the contacts to a member, about
   1 KB of body), queued for Salesforce as the Graph sync queues them; then
   ``drain_salesforce`` writes them all: wall time, Salesforce API requests (as sfsim
   counted them: every request, lookups included) per 1,000 emails, and what sfsim holds
   afterwards (one EmailMessage per email, two EmailMessageRelations each);
2. the same records — read back from sfsim: every EmailMessage field the writer set, and
   the relations — written by a bare simple-salesforce loop on the same server, reset to the
   same org first: sObject Collections upserts of 200 by the same External ID field, then
   the relations, five collections of 200 in one composite call (the cheapest way to write
   them through the REST API). It plans nothing, matches nobody and records nothing.

Each of ``--runs`` runs is the writer (the org reset, a fresh local store) then the bare
loop (the org reset): on a shared machine, load comes and goes, and alternating spreads
it over both. The writer's speed is compared with the bare loop's, medians over the runs.

``--latency-ms`` is sfsim's modelled answer time (Salesforce takes 100-300 ms; default 0
here, so the comparison measures the writer's own cost, not the wait both sides share).
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from m365sync.crm.salesforce_run_test import EMAIL_MESSAGE_FIELDS

CONSUMER_KEY = "3MVG9sfsim.demo.m365sync.consumer.key.0001"
INTEGRATION_USER = "integration@acme.example"
MEMBERS = ("adele@contoso.com", "alex@contoso.com")
ACCOUNTS = 20
CONTACTS = 200
BODY = (
    "Hello,\n\nThanks for the call today. As discussed, the attached proposal covers the "
    "500 units, delivery in two batches and the service plan. Let me know if anything is "
    "unclear or if you need the figures broken down differently.\n\n"
) * 4
EMAIL_FIELDS = ("M365Sync_Message_Id__c", *EMAIL_MESSAGE_FIELDS)
"""What the writer sets on an EmailMessage (all Run Test checks are writable)."""
PER_CALL = 200
COLLECTIONS_PER_COMPOSITE = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sfsim:
    proc: subprocess.Popen[bytes]
    url: str
    ca_bundle: Path
    http: requests.Session

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, f"{self.url}/_sim/{path}", timeout=600, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def records(self, sobject: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.control("GET", f"records/{sobject}")["value"]
        return [r for r in rows if not r.get("IsDeleted")]

    def api_used(self) -> int:
        return int(self.control("GET", "org")["apiUsage"]["used"])

    def reset(self) -> None:
        """The benchmark's org, from nothing: the demo seed, the members' users, the
        accounts and contacts (same order, so the same ids)."""
        from sfsim.seed import DEMO_SEED, read_seed

        self.control("POST", "reset")
        self.control("POST", "seed", json=read_seed(DEMO_SEED))
        self.control("POST", "seed", json=bench_seed())


def start_sfsim(data_dir: Path, latency_ms: int) -> Sfsim:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfsim",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--latency-ms",
            str(latency_ms),
            "--latency-jitter-ms",
            str(latency_ms * 2 // 5),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    bundle = data_dir / "ca-bundle.pem"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            http = trusting(bundle)
            http.get(f"{url}/_sim/org", timeout=5).raise_for_status()
            return Sfsim(proc, url, bundle, http)
        except (requests.RequestException, OSError):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("sfsim did not start")


def trusting(bundle: Path) -> requests.Session:
    """A session trusting sfsim's CA (``REQUESTS_CA_BUNDLE`` would override ``verify``)."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(bundle)
    return http


def bench_seed() -> dict[str, Any]:
    users = [
        {
            "username": f"{address.split('@')[0]}@acme.example",
            "firstName": address.split("@")[0].capitalize(),
            "lastName": "Contoso",
            "email": address,
        }
        for address in MEMBERS
    ]
    accounts = [{"_ref": f"acc{a}", "Name": f"Customer {a}"} for a in range(ACCOUNTS)]
    contacts = [
        {
            "FirstName": f"Buyer{c}",
            "LastName": f"Customer{c % ACCOUNTS}",
            "Email": contact_address(c),
            "AccountId": f"@acc{c % ACCOUNTS}",
        }
        for c in range(CONTACTS)
    ]
    return {"users": users, "records": {"Account": accounts, "Contact": contacts}}


def contact_address(number: int) -> str:
    return f"buyer{number}@customer{number % ACCOUNTS}.example"


# -- the product -------------------------------------------------------------------------------


@dataclass
class Product:
    database: Any
    settings: Any
    box: Any
    organization_id: str


def setup_product(sim: Sfsim, work: Path) -> Product:
    """A migrated SQLite database with Contoso and its members, connected to the org (JWT
    bearer, as the integration user) with its people mirrored."""
    from m365sync.crm.salesforce_mirror import refresh_salesforce_people
    from m365sync.crm.salesforce_service import connect_with_jwt
    from m365sync.crypto import SecretBox
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
    from sfsim.seed import DEMO_SEED

    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=work,
        database_url=f"sqlite:///{work / 'm365sync.db'}",
        secret_key=base64.b64encode(os.urandom(32)).decode(),
        salesforce_login_url=sim.url,
        ca_bundle=sim.ca_bundle,
    )
    database = Database.from_url(settings.resolved_database_url)
    migrate(database.engine)
    box = SecretBox.from_settings(settings)
    with database.session() as s:
        org = create_organization(s, "Contoso")
        add_domain(s, org, "contoso.com")
        verify_domain(s, org, "contoso.com", method=DomainProof.SERVICE_ACCOUNT, tenant_id="t")
        for address in MEMBERS:
            add_member(s, org, address)
        organization_id = org.id
    with database.session() as s:
        report = connect_with_jwt(
            s,
            box,
            settings,
            organization_id,
            consumer_key=CONSUMER_KEY,
            username=INTEGRATION_USER,
            private_key_pem=(DEMO_SEED.parent / "demo-jwt.key").read_text(),
        )
        if not report.ok:
            raise RuntimeError(f"connecting failed: {report.failures()}")
    refresh_salesforce_people(database, organization_id, settings=settings, box=box)
    return Product(database, settings, box, organization_id)


def fill_store(product: Product, count: int) -> None:
    """``count`` logged emails in the local store, queued for Salesforce in the same
    transaction, as the Graph sync engine stores a page (1,000 a transaction)."""
    from m365sync.crm.embedded import EmbeddedCrm
    from m365sync.crm.target import EmailRecord, Participant
    from m365sync.organizations.models import Member

    with product.database.session() as s:
        members = {
            m.email: m.id
            for m in s.query(Member).filter_by(organization_id=product.organization_id)
        }
        people = EmbeddedCrm(s, product.organization_id).find_people(
            [contact_address(c) for c in range(CONTACTS)]
        )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for first in range(0, count, 1000):
        records = []
        for n in range(first, min(count, first + 1000)):
            member = MEMBERS[n % len(MEMBERS)]
            contact = contact_address(n % CONTACTS)
            match = people[contact]
            records.append(
                EmailRecord(
                    external_id=f"<bench-{n}@customer.example>",
                    member_id=members[member],
                    graph_item_id=f"AAMk-bench-{n}",
                    folder="inbox",
                    subject=f"Proposal {n}",
                    body=BODY,
                    body_type="text",
                    headers_only=False,
                    occurred_at=start + timedelta(minutes=n),
                    from_address=contact,
                    participants=[
                        Participant(contact, f"Buyer {n % CONTACTS}", "from"),
                        Participant(member, member.split("@")[0].capitalize(), "to"),
                    ],
                    people=[match],
                    account_ids=[match.account_id] if match.account_id else [],
                )
            )
        with product.database.session() as s:
            EmbeddedCrm(s, product.organization_id, queue_changes=True).upsert_emails(records)


def drain(product: Product) -> tuple[Any, float]:
    from m365sync.crm.salesforce_writer import drain_salesforce

    started = time.perf_counter()
    result = drain_salesforce(
        product.database,
        product.organization_id,
        settings=product.settings,
        box=product.box,
        max_rounds=1_000_000,
    )
    return result, time.perf_counter() - started


# -- the bare loop -----------------------------------------------------------------------------


def captured(sim: Sfsim) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """What the writer wrote: each EmailMessage's fields (those the writer sets) with its
    relations (target and role)."""
    relations: dict[str, list[dict[str, Any]]] = {}
    for row in sim.records("EmailMessageRelation"):
        relations.setdefault(row["EmailMessageId"], []).append(
            {"RelationId": row["RelationId"], "RelationType": row["RelationType"]}
        )
    emails = sorted(sim.records("EmailMessage"), key=lambda r: str(r["M365Sync_Message_Id__c"]))
    return [
        (
            {k: email[k] for k in EMAIL_FIELDS if email.get(k) is not None},
            relations.get(email["Id"], []),
        )
        for email in emails
    ]


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bare_loop(
    sim: Sfsim, work: list[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> tuple[float, int]:
    """The same EmailMessages and relations through simple-salesforce alone: seconds, and
    API requests."""
    from simple_salesforce.api import Salesforce

    from m365sync.salesforce import JwtBearerFlow, JwtSigningKey
    from m365sync.settings import Settings
    from sfsim.seed import DEMO_SEED

    settings = Settings(_env_file=None, salesforce_login_url=sim.url, ca_bundle=sim.ca_bundle)  # type: ignore[call-arg]
    token = JwtBearerFlow(
        settings,
        consumer_key=CONSUMER_KEY,
        username=INTEGRATION_USER,
        signing_key=JwtSigningKey((DEMO_SEED.parent / "demo-jwt.key").read_text()),
    )()
    http = trusting(sim.ca_bundle)
    api = Salesforce(
        instance_url=token.instance_url, session_id=token.access_token, session=http, version="59.0"
    )
    calls = 0
    started = time.perf_counter()
    for block in chunks(work, PER_CALL * COLLECTIONS_PER_COMPOSITE):
        relations: list[dict[str, Any]] = []
        for part in chunks(block, PER_CALL):
            answer = api.restful(
                "composite/sobjects/EmailMessage/M365Sync_Message_Id__c",
                method="PATCH",
                json={
                    "allOrNone": False,
                    "records": [{"attributes": {"type": "EmailMessage"}, **e} for e, _ in part],
                },
            )
            calls += 1
            for (_, related), result in zip(part, answer, strict=True):
                relations += [
                    {
                        "attributes": {"type": "EmailMessageRelation"},
                        "EmailMessageId": result["id"],
                        **r,
                    }
                    for r in related
                ]
        for call in chunks(relations, PER_CALL * COLLECTIONS_PER_COMPOSITE):
            api.restful(
                "composite",
                method="POST",
                json={
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": "POST",
                            "url": "/services/data/v59.0/composite/sobjects",
                            "referenceId": f"c{n}",
                            "body": {"allOrNone": False, "records": records},
                        }
                        for n, records in enumerate(chunks(call, PER_CALL))
                    ],
                },
            )
            calls += 1
    return time.perf_counter() - started, calls


# -- the run -----------------------------------------------------------------------------------


def run_size(sim: Sfsim, root: Path, count: int, runs: int) -> list[tuple[str, str]]:
    """``runs`` rounds of: the writer (org reset, a fresh local store), then the bare loop
    (org reset) on what the first writer run wrote. Alternating spreads a shared machine's
    load over both sides."""
    rows: list[tuple[str, str]] = []
    work: list[tuple[dict[str, Any], list[dict[str, Any]]]] | None = None
    writer_times: list[float] = []
    bare_times: list[float] = []
    for run in range(runs):
        sim.reset()
        product = setup_product(sim, root / f"product-{count}-{run}")
        fill_store(product, count)
        used_before = sim.api_used()
        result, seconds = drain(product)
        used = sim.api_used() - used_before
        emails = sim.records("EmailMessage")
        relations = sim.records("EmailMessageRelation")
        assert result.synced == count, result
        assert len({e["M365Sync_Message_Id__c"] for e in emails}) == len(emails) == count
        assert len(relations) == 2 * count
        writer_times.append(seconds)
        rows.append(
            (
                f"m365sync drain, {count:,} emails, run {run + 1}",
                f"{seconds:.1f} s = {count / seconds:,.0f} emails/s; {used} API requests "
                f"(the writer counted {result.api_calls}) = {used * 1000 / count:.1f} per "
                "1,000 emails",
            )
        )
        if work is None:
            work = captured(sim)
        product.database.dispose()
        sim.reset()
        bare_seconds, calls = bare_loop(sim, work)
        assert len(sim.records("EmailMessage")) == count
        bare_times.append(bare_seconds)
        rows.append(
            (
                f"  bare simple-salesforce loop, run {run + 1}",
                f"{bare_seconds:.1f} s = {count / bare_seconds:,.0f} emails/s; {calls} API "
                "requests",
            )
        )
    each = ", ".join(f"{b / w:.2f}x" for w, b in zip(writer_times, bare_times, strict=True))
    ratio = statistics.median(bare_times) / statistics.median(writer_times)
    rows.append(
        (f"  writer speed / bare loop speed, {count:,}", f"{ratio:.2f}x (medians; runs {each})")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--runs", type=int, default=2, help="writer, then bare loop, per run")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="m365sync-sfbench-"))
    sim = start_sfsim(root / "sfsim", args.latency_ms)
    rows: list[tuple[str, str]] = []
    try:
        for count in dict.fromkeys(c for c in (args.small, args.emails) if c > 0):
            done = run_size(sim, root, count, args.runs)
            rows += done
            for label, value in done:
                print(f"{label:<44} {value}", flush=True)
    finally:
        sim.proc.terminate()
        sim.proc.wait(timeout=30)
    print()
    print(f"sfsim latency {args.latency_ms} ms; Python {sys.version.split()[0]}")
    for label, value in rows:
        print(f"{label:<44} {value}")


if __name__ == "__main__":
    main()
