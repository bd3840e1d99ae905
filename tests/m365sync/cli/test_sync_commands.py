"""``m365sync sync | status | crm import``: exit codes 0, 1, 2 and 3, what a person reads,
and the SQLite write-ahead log emptied when the command ends."""

from __future__ import annotations

import ssl

import httpx
from sqlalchemy import update

from m365sync.connections.models import ServiceAccount
from m365sync.db import Database
from m365sync.sync.features import SyncFeature
from m365sync.sync.repository import SyncRepository


def test_sync_and_status_commands(m365sync, add_service_account, tmp_path, monkeypatch):
    """``m365sync sync`` logs a mailbox's mail with the CRM's contacts, ``status`` shows the
    unit, and the SQLite write-ahead log is emptied when the command ends."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    code, _, err = add_service_account("diego@contoso.com")
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

    monkeypatch.setenv("COLUMNS", "160")  # a wide terminal
    code, out, _ = m365sync("status", "--org", "contoso")
    assert code == 0
    table = out.replace("│", " ")
    row = next(line for line in table.splitlines() if "diego@contoso.com" in line)
    assert row.split()[1:3] == ["email", "active"] and str(logged) in row.split()

    wal = tmp_path / "data" / "m365sync.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_sync_skipped_because_busy_says_so_and_fails_when_nothing_ran(
    m365sync, add_service_account, tmp_path
):
    """Units another m365sync process is running are listed as skipped; when that is every
    selected unit, nothing ran and ``sync`` says so with exit code 3."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    assert add_service_account("diego@contoso.com")[0] == 0
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


def test_sync_when_entra_id_is_unwell_reports_it_and_the_next_run_syncs(
    m365sync, add_service_account, sim, tmp_path, monkeypatch
):
    """Tenant discovery answering 503 through every retry: no traceback, the unit is shown
    retrying by itself, and running ``sync`` again right away syncs (nothing left held)."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    assert add_service_account("diego@contoso.com")[0] == 0
    assert m365sync("members", "add", "-o", "contoso", "diego@contoso.com")[0] == 0
    # Saving the account kept the token and the tenant's OpenID configuration it fetched;
    # without them (a cache discarded), the run has to ask Entra ID.
    database = Database.from_url(f"sqlite:///{tmp_path / 'data' / 'm365sync.db'}")
    with database.session() as session:
        session.execute(update(ServiceAccount).values(token_cache_sealed=None))
    database.dispose()
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
