"""``m365sync backup | restore | purge | erase`` as an operator types them."""

from __future__ import annotations

import sqlite3
import stat

import pytest


def test_backup_then_restore_brings_the_database_back(m365sync, tmp_path) -> None:
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    backup = tmp_path / "backups" / "monday.db"

    code, out, _ = m365sync("backup", str(backup))
    assert code == 0 and "Backed up to" in out and "secret key" in out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # it holds every synced email
    assert m365sync("orgs", "create", "Fabrikam")[0] == 0

    code, out, _ = m365sync("restore", str(backup), "--yes")
    assert code == 0 and "Restored" in out
    code, out, _ = m365sync("orgs", "list", "--json")
    assert "Contoso" in out and "Fabrikam" not in out


def test_backup_never_writes_over_a_file(m365sync, tmp_path) -> None:
    existing = tmp_path / "keep.db"
    existing.write_text("precious")

    code, _, err = m365sync("backup", str(existing))

    assert code == 2 and "already exists" in err and "Fix:" in err
    assert existing.read_text() == "precious"


def test_restore_refuses_what_is_not_an_m365sync_backup(m365sync, tmp_path) -> None:
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database at all, just some notes " * 200)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")

    code, _, err = m365sync("restore", str(text_file), "--yes")
    assert code == 2 and "not a SQLite database" in " ".join(err.split())
    code, _, err = m365sync("restore", str(other), "--yes")
    assert code == 2 and "not an m365sync one" in " ".join(err.split())
    assert "Contoso" in m365sync("orgs", "list", "--json")[1]  # nothing was touched


def test_backup_of_postgresql_points_to_its_own_tools(
    m365sync, tmp_path, monkeypatch, postgres_url
) -> None:
    if postgres_url is None:
        pytest.skip("PostgreSQL unreachable")
    monkeypatch.setenv("M365SYNC_DATABASE_URL", postgres_url)

    code, _, err = m365sync("backup", str(tmp_path / "x.db"))

    assert code == 2 and "pg_dump" in err and "pg_restore" in err


def test_purge_and_erase_say_what_they_need(m365sync) -> None:
    assert m365sync("orgs", "create", "Contoso")[0] == 0

    code, _, err = m365sync("purge")
    assert code == 2 and "--bodies-older-than" in err

    code, _, err = m365sync("purge", "--bodies-older-than", "7")
    assert code == 2 and "sync window (30 days)" in " ".join(err.split())

    code, out, _ = m365sync("purge", "--activities-older-than", "365")
    assert code == 0 and "0 activities deleted" in out

    code, _, err = m365sync("erase", "--org", "contoso", "--email", "not an address")
    assert code == 2 and "is not an email address" in err
