"""``m365sync db``, and a command whose write waits too long for another process."""

from __future__ import annotations

import sqlite3
import threading


def checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wal-checkpointer:")]


def test_db_upgrade(m365sync):
    code, out, _ = m365sync("db", "upgrade")
    assert code == 0 and "revision" in out


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


def test_commands_leave_no_database_thread_behind(m365sync):
    """Each command disposes of its database when it ends, however it ends: its WAL
    checkpointer thread stops (a long-lived process running commands keeps none)."""
    before = set(checkpointers())
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("members", "add", "-o", "contoso", "adele@contoso.com")[0] == 0
    assert m365sync("domains", "list", "-o", "nope")[0] == 2  # an error ends it too
    assert m365sync("sync", "--mailbox", "nobody@contoso.com")[0] == 2
    assert m365sync("status", "--org", "contoso")[0] == 0
    assert m365sync("db", "current")[0] == 0

    assert set(checkpointers()) - before == set()
