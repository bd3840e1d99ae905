"""The CLI as a script uses it: exit codes (0 ok, 1 failure, 2 usage/validation, 3 nothing
ran), output, key rotation, several processes at once."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys

import httpx
import pytest
from tests.m365sync.conftest import DEMO_APP_ID, DEMO_SECRET, DEMO_SECRET_ID

from m365sync import cli
from m365sync.db import Database
from m365sync.settings import get_settings
from m365sync.sync import cli as sync_cli
from m365sync.sync.models import SyncFeature
from m365sync.sync.repository import SyncRepository


@pytest.fixture
def m365sync(sim, tmp_path, monkeypatch, capsys):
    env = {
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_AUTHORITY_HOST": sim.url,
        "M365SYNC_GRAPH_URL": sim.graph_url,
        "M365SYNC_CA_BUNDLE": str(sim.tls.ca_bundle),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
        "M365SYNC_GRAPH_BACKOFF_MAX_SECONDS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("M365SYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("M365SYNC_SECRET_KEY", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        with pytest.raises(SystemExit) as exited:
            cli.main(list(args))
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    yield run
    get_settings.cache_clear()


def add_service_account(m365sync, test_mailbox: str) -> tuple[int, str, str]:
    """``m365sync service-accounts add`` for Contoso with the demo app's secret."""
    return m365sync(
        "service-accounts",
        "add",
        "-o",
        "contoso",
        "--client-id",
        DEMO_APP_ID,
        "--secret",
        DEMO_SECRET,
        "--test-mailbox",
        test_mailbox,
    )


def test_exit_codes_and_service_account_lifecycle(m365sync, tmp_path):
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    code, _, err = add_service_account(m365sync, "adele@contoso.com")
    assert code == 2 and "No domains to sync" in err and "domains add" in err
    assert m365sync("domains", "add", "-o", "contoso", "not a domain")[0] == 2
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    assert m365sync("domains", "list", "-o", "nope")[0] == 2
    assert m365sync("members", "list")[0] == 2  # --org missing: usage

    code, out, _ = m365sync(
        "service-accounts",
        "test",
        "-o",
        "contoso",
        "--client-id",
        DEMO_APP_ID,
        "--secret",
        DEMO_SECRET_ID,
        "--test-mailbox",
        "adele@contoso.com",
        "--json",
    )
    assert code == 1
    report = json.loads(out)
    assert any(
        c["key"] == "secret_format" and "secret's ID" in c["message"] for c in report["checks"]
    )
    code, _, err = m365sync(
        "service-accounts",
        "add",
        "-o",
        "contoso",
        "--client-id",
        DEMO_APP_ID,
        "--secret",
        DEMO_SECRET_ID,
        "--test-mailbox",
        "adele@contoso.com",
    )
    said = " ".join(err.split())
    assert code == 1 and "secret's ID" in said
    assert "run the same command with --partial" in said and '"partial"' not in said

    code, out, err = add_service_account(m365sync, "adele@contoso.com")
    assert code == 0, err
    assert "Saved service account" in out and DEMO_SECRET not in out + err
    code, out, _ = m365sync("service-accounts", "list", "-o", "contoso", "--json")
    accounts = json.loads(out)
    assert code == 0 and accounts[0]["status"] == "active" and DEMO_SECRET not in out
    account_id = accounts[0]["id"]

    code, out, _ = m365sync(
        "access-policy",
        "commands",
        "-o",
        "contoso",
        "--account",
        account_id,
        "--group",
        "crm-sync@contoso.com",
    )
    assert code == 0
    assert (
        f"New-ApplicationAccessPolicy -AppId '{DEMO_APP_ID}' -PolicyScopeGroupId "
        "'crm-sync@contoso.com' -AccessRight RestrictAccess" in out
    )
    assert (
        "Test-ApplicationAccessPolicy" in out
        and "New-ManagementScope" in out
        and "New-ServicePrincipal" in out
    )

    members = tmp_path / "members.csv"
    members.write_text(
        "email,name,role\nadele@contoso.com,Adele Vance,user\npradeep@contoso.com,Pradeep,user\n"
    )
    assert m365sync("members", "import", "-o", "contoso", str(members))[0] == 0
    code, out, _ = m365sync(
        "access-policy", "report", "-o", "contoso", "--account", account_id, "--json"
    )
    reach = {r["email"]: r["reach"] for r in json.loads(out)}
    assert reach == {"adele@contoso.com": "reachable", "pradeep@contoso.com": "mailbox_not_enabled"}

    code, out, _ = m365sync("connections", "status", "-o", "contoso", "--json")
    assert code == 0 and all(row["service_accounts"] for row in json.loads(out))
    assert m365sync("service-accounts", "remove", "-o", "contoso", account_id)[0] == 0


def test_key_rotation_reseals_everything(m365sync, tmp_path):
    m365sync("orgs", "create", "Contoso")
    m365sync("domains", "add", "-o", "contoso", "contoso.com")
    assert (
        m365sync(
            "service-accounts",
            "add",
            "-o",
            "contoso",
            "--client-id",
            DEMO_APP_ID,
            "--secret",
            DEMO_SECRET,
            "--test-mailbox",
            "adele@contoso.com",
        )[0]
        == 0
    )
    key_file = tmp_path / "data" / "secret.key"
    before_key = key_file.read_text()
    db_path = tmp_path / "data" / "m365sync.db"

    def sealed() -> bytes:
        with sqlite3.connect(db_path) as connection:
            return connection.execute("select secret_sealed from service_accounts").fetchone()[0]

    before = sealed()
    code, out, _ = m365sync("keys", "rotate")
    assert code == 0 and "Re-encrypted" in out
    assert key_file.read_text() != before_key and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert sealed() != before
    code, out, _ = m365sync(
        "service-accounts",
        "test",
        "-o",
        "contoso",
        json.loads(m365sync("service-accounts", "list", "-o", "contoso", "--json")[1])[0]["id"],
    )
    assert code == 0, out


def test_db_upgrade(m365sync):
    code, out, _ = m365sync("db", "upgrade")
    assert code == 0 and "revision" in out


def test_sync_and_status_commands(m365sync, tmp_path, monkeypatch):
    """``m365sync sync`` logs a mailbox's mail with the CRM's contacts, ``status`` shows the
    unit, and the SQLite write-ahead log is emptied when the command ends."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    code, _, err = add_service_account(m365sync, "diego@contoso.com")
    assert code == 0, err
    members = tmp_path / "members.csv"
    members.write_text("email,name,role\ndiego@contoso.com,Diego Siciliani,user\n")
    assert m365sync("members", "import", "-o", "contoso", str(members))[0] == 0
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("email,first_name,last_name,company\nkim@fabrikam.com,Kim,Buyer,Fabrikam\n")
    assert m365sync("crm", "import", str(contacts), "--org", "contoso")[0] == 0

    code, out, err = m365sync("sync", "--mailbox", "nobody@contoso.com")
    assert code == 2 and "No member matches" in out, (code, out, err)

    code, out, _ = m365sync("sync", "--org", "contoso", "--feature", "email")
    assert code == 0, out
    logged = int(out.split("diego@contoso.com email:")[1].split("logged")[0].split(",")[1])
    assert logged > 0  # the mail from Kim Buyer, a contact; the rest is not logged

    monkeypatch.setattr(sync_cli.console, "width", 160)  # a wide terminal
    code, out, _ = m365sync("status", "--org", "contoso")
    assert code == 0
    table = out.replace("│", " ")
    row = next(line for line in table.splitlines() if "diego@contoso.com" in line)
    assert row.split()[1:3] == ["email", "active"] and str(logged) in row.split()

    wal = tmp_path / "data" / "m365sync.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_api_tokens_are_listed_and_revoked(m365sync):
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert (
        m365sync("members", "add", "-o", "contoso", "admin@contoso.com", "--role", "admin")[0] == 0
    )
    code, out, err = m365sync(
        "api-tokens", "create", "-o", "contoso", "--admin", "admin@contoso.com", "--name", "ci"
    )
    token = out.strip()
    assert code == 0 and token.startswith("m365s_") and "shown once" in err

    code, out, _ = m365sync("api-tokens", "list", "-o", "contoso", "--json")
    (listed,) = json.loads(out)
    assert code == 0 and token not in out
    assert (listed["name"], listed["admin"], listed["revoked_at"]) == (
        "ci",
        "admin@contoso.com",
        None,
    )
    assert token.startswith(listed["prefix"]) and listed["id"] in err

    code, out, _ = m365sync("api-tokens", "revoke", "-o", "contoso", listed["id"])
    assert code == 0 and f"Revoked API token {listed['id']}" in out
    code, out, _ = m365sync("api-tokens", "list", "-o", "contoso", "--json")
    assert json.loads(out)[0]["revoked_at"] is not None
    code, _, err = m365sync("api-tokens", "revoke", "-o", "contoso", "no-such-token")
    assert code == 2 and "no API token" in err


def test_a_missing_key_file_stops_commands_that_need_it_and_is_not_recreated(m365sync, tmp_path):
    m365sync("orgs", "create", "Contoso")
    m365sync("domains", "add", "-o", "contoso", "contoso.com")
    assert add_service_account(m365sync, "adele@contoso.com")[0] == 0
    key_file = tmp_path / "data" / "secret.key"
    key = key_file.read_text()
    key_file.unlink()

    code, out, err = m365sync("service-accounts", "list", "-o", "contoso", "--json")
    assert code == 0  # nothing secret is needed to list them
    account_id = json.loads(out)[0]["id"]
    code, _, err = m365sync("service-accounts", "test", "-o", "contoso", account_id)
    assert code == 1
    assert f"The secret key file {key_file.resolve()} is missing" in " ".join(err.split())
    assert "M365SYNC_SECRET_KEY" in err
    assert not key_file.exists()

    key_file.write_text(key)
    assert m365sync("service-accounts", "test", "-o", "contoso", account_id)[0] == 0


def test_serve_shows_the_products_own_log_lines_at_debug(tmp_path):
    """``M365SYNC_LOG_LEVEL=DEBUG m365sync serve`` shows m365sync's lines next to the web
    server's, and never the secrets of its settings."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
        "M365SYNC_LOG_LEVEL": "DEBUG",
        "M365SYNC_USER_APP_CLIENT_SECRET": "Zx8Q~never.logged",
        "M365SYNC_DATABASE_URL": "",
    }
    env.pop("M365SYNC_SECRET_KEY", None)
    command = [sys.executable, "-c", "from m365sync.cli import main; main()"]
    server = subprocess.Popen(
        [*command, "serve", "--no-demo", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if "Application startup complete" in line:
                break
    finally:
        server.send_signal(signal.SIGINT)
        rest = server.communicate(timeout=60)[1]
    log = "".join(lines) + rest
    assert "Application startup complete" in log, log
    assert re.search(r"^DEBUG: +m365sync\.cli: serve: data directory ", log, re.MULTILINE), log
    assert "Zx8Q~never.logged" not in log


def test_domains_are_claims_until_verified_and_one_organization_holds_one(m365sync):
    for name in ("Squatter", "Woodgrove"):
        assert m365sync("orgs", "create", name)[0] == 0
        code, out, _ = m365sync("domains", "add", "-o", name.lower(), "woodgrove.com")
        assert code == 0 and "not verified yet" in out
    code, out, _ = m365sync("domains", "list", "-o", "woodgrove", "--json")
    (claim,) = json.loads(out)
    assert claim["verified"] is False
    assert claim["dns_txt_record"]["value"].startswith("m365sync-verification=")

    code, out, _ = m365sync("domains", "verify", "-o", "woodgrove", "woodgrove.com", "--trust")
    assert code == 0 and "woodgrove.com is verified (operator)" in out
    code, out, _ = m365sync("domains", "list", "-o", "squatter", "--json")
    assert json.loads(out) == []  # the squatter's claim was dropped
    code, _, err = m365sync("domains", "add", "-o", "squatter", "woodgrove.com")
    assert code == 2 and "verified by another organization" in err


def test_sync_skipped_because_busy_says_so_and_fails_when_nothing_ran(m365sync, tmp_path):
    """Units another m365sync process is running are listed as skipped; when that is every
    selected unit, nothing ran and ``sync`` says so with exit code 3."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    assert add_service_account(m365sync, "diego@contoso.com")[0] == 0
    assert m365sync("members", "add", "-o", "contoso", "diego@contoso.com")[0] == 0
    database = Database.from_url(f"sqlite:///{tmp_path / 'data' / 'm365sync.db'}")
    with database.session() as session:
        repo = SyncRepository(session)
        (member,) = repo.find_members("contoso")
        units = {
            f: repo.ensure_unit(member, f).id for f in (SyncFeature.EMAIL, SyncFeature.CALENDAR)
        }
        for unit_id in units.values():
            assert repo.try_lease(unit_id, "other-host:4242:cafe", 300)

    code, out, _ = m365sync("sync", "--org", "contoso")
    out = " ".join(out.split())  # as printed, wrapped to the terminal

    assert code == 3, out
    assert "diego@contoso.com email: skipped, already running elsewhere by other-host" in out
    assert "diego@contoso.com calendar: skipped" in out
    assert "Nothing was synced" in out

    with database.session() as session:
        SyncRepository(session).release_lease(units[SyncFeature.EMAIL], "other-host:4242:cafe")
    database.dispose()

    code, out, _ = m365sync("sync", "--org", "contoso")
    out = " ".join(out.split())

    assert code == 0, out
    assert "✓ diego@contoso.com email" in out
    assert "diego@contoso.com calendar: skipped" in out and "1 of 2 units skipped" in out


def test_a_write_that_waits_too_long_for_another_process_says_why(m365sync, tmp_path, monkeypatch):
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    monkeypatch.setenv("M365SYNC_SQLITE_BUSY_TIMEOUT_SECONDS", "0.5")
    other_process = sqlite3.connect(tmp_path / "data" / "m365sync.db", isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # another writer, in the middle of its work
    try:
        code, out, err = m365sync("members", "add", "-o", "contoso", "adele@contoso.com")
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()

    err = " ".join(err.split())
    assert code == 1
    assert "Traceback" not in out + err
    assert "is busy: another m365sync process" in err
    assert "Fix: Try again in a moment" in err and "PostgreSQL" in err
    assert m365sync("members", "add", "-o", "contoso", "adele@contoso.com")[0] == 0


def test_sync_when_entra_id_is_unwell_reports_it_and_the_next_run_syncs(
    m365sync, sim, tmp_path, monkeypatch
):
    """Tenant discovery answering 503 through every retry: no traceback, the unit is shown
    retrying by itself, and running ``sync`` again right away syncs (nothing left held)."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    assert add_service_account(m365sync, "diego@contoso.com")[0] == 0
    assert m365sync("members", "add", "-o", "contoso", "diego@contoso.com")[0] == 0
    monkeypatch.setenv("M365SYNC_GRAPH_MAX_RETRIES", "1")
    monkeypatch.setenv("M365SYNC_GRAPH_BACKOFF_BASE_SECONDS", "0.01")
    httpx.post(
        f"{sim.url}/_sim/faults",
        json={"kind": "503", "pathRegex": "openid-configuration", "count": 2},
        verify=ssl.create_default_context(cafile=str(sim.tls.ca_bundle)),
    ).raise_for_status()

    code, out, err = m365sync("sync", "--org", "contoso", "--feature", "email")
    out = " ".join(out.split())

    assert code == 1, out
    assert "Traceback" not in out + err
    assert "diego@contoso.com email: backing_off" in out
    assert "Microsoft unavailable, retrying" in out and "Retried by itself from" in out

    code, out, _ = m365sync("sync", "--org", "contoso", "--feature", "email")

    assert code == 0, out
    assert "✓ diego@contoso.com email" in out and "skipped" not in out
