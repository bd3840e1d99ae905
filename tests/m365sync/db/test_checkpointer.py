"""The WAL checkpointer: a SQLite ``Database`` copies its WAL back into the database file
from a background thread, never inside a commit, and keeps the WAL from growing without
bound."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from m365sync.db import Database, create_db_engine
from m365sync.db import checkpoint as checkpoint_module
from m365sync.db.checkpoint import JOURNAL_SIZE_LIMIT, WalCheckpointer
from support.polling import wait_for

MB = 1024 * 1024
TICK = 0.02


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def wal(path: Path) -> Path:
    return Path(f"{path}-wal")


def checkpointer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wal-checkpointer:")]


def write_blobs(database: Database, commits: int) -> None:
    """Rows of 100 KiB, one commit each, as a sync commits its pages."""
    for _ in range(commits):
        with database.session() as session:
            session.execute(text("INSERT INTO blob (body) VALUES (randomblob(100 * 1024))"))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "m365sync.db"


@pytest.fixture
def database(path: Path) -> Iterator[Database]:
    database = Database.from_url(f"sqlite:///{path}", checkpoint_interval=TICK)
    with database.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
    try:
        yield database
    finally:
        database.dispose()


def test_commits_leave_the_checkpoints_to_the_background_thread(
    database: Database, path: Path
) -> None:
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        limit = connection.exec_driver_sql("PRAGMA journal_size_limit").scalar()
        assert limit == JOURNAL_SIZE_LIMIT

    write_blobs(database, 80)

    wait_for(lambda: size(path) > 7 * MB, 15, message="the rows never reached the database file")


def test_continuous_writes_do_not_grow_the_wal_without_bound(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "JOURNAL_SIZE_LIMIT", 1 * MB)
    monkeypatch.setattr(checkpoint_module, "RESTART_AFTER_FRAMES", 256)
    database = Database.from_url(f"sqlite:///{path}", checkpoint_interval=TICK)
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
        # A writer that commits again a moment after each commit (as a sync does, after
        # preparing its next page): the WAL is never wholly copied back when a write begins.
        for _ in range(300):
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("INSERT INTO blob (body) VALUES (randomblob(100 * 1024))")
            cursor.execute("COMMIT")
            time.sleep(0.001)
        cursor.close()
        assert size(wal(path)) < 10 * MB  # of 29 MiB written
        assert size(path) > 10 * MB
    finally:
        connection.close()
        database.dispose()


def test_dispose_stops_the_thread_and_empties_the_wal(database: Database, path: Path) -> None:
    assert database.checkpointer is not None and database.checkpointer.running
    # Another process's connection (the web server's, say) keeps the WAL file in use, so
    # closing our connections alone would leave it full.
    other_process = sqlite3.connect(path)
    try:
        other_process.execute("SELECT count(*) FROM blob").fetchall()
        write_blobs(database, 40)
        assert size(wal(path)) > 0

        database.dispose()

        assert not database.checkpointer.running
        assert checkpointer_threads() == []
        assert wal(path).exists() and size(wal(path)) == 0
        assert other_process.execute("SELECT count(*) FROM blob").fetchall() == [(40,)]
    finally:
        other_process.close()


def test_a_forked_process_checkpoints_its_own_writes(database: Database, path: Path) -> None:
    database.dispose()  # the parent's thread must not be the one doing the work
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            database.engine.dispose(close=False)  # connections stay with the parent
            write_blobs(database, 40)
            try:
                wait_for(lambda: size(path) > 3 * MB, 15)
                code = 0
            except AssertionError:
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_locked_database_is_retried_quietly(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=checkpoint_module.__name__)
    # A connection in exclusive locking mode keeps every other one out of the file.
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
    checkpointer = WalCheckpointer(path, interval=TICK)
    checkpointer.start()
    try:
        for _ in range(3):  # a WAL that keeps changing, tried again on each change
            holder.execute("INSERT INTO blob (body) VALUES (randomblob(1024))")
            seen = len(caplog.records)
            wait_for(lambda: len(caplog.records) > seen, 15)
        assert checkpointer.running
    finally:
        checkpointer.stop()
        holder.close()

    assert all("database is locked" in r.getMessage() for r in caplog.records)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_an_unreadable_database_is_reported_once_and_never_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=checkpoint_module.__name__)
    missing = tmp_path / "gone.db"
    wal(missing).write_bytes(b"left behind" * 100)
    checkpointer = WalCheckpointer(missing, interval=TICK)
    checkpointer.start()
    try:
        wait_for(lambda: len(caplog.records) >= 4, 15)  # several failing ticks
        assert checkpointer.running
    finally:
        checkpointer.stop()

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "gone.db" in warnings[0].getMessage()
    assert not missing.exists()


def test_engines_without_a_checkpointer_keep_automatic_checkpoints(path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
            connection.exec_driver_sql("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
        for _ in range(100):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO blob (body) VALUES (randomblob(100 * 1024))"))
        assert checkpointer_threads() == []
        assert size(path) > 5 * MB
        assert size(wal(path)) < 6 * MB
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://m365sync@127.0.0.1/m365sync"]
)
def test_only_sqlite_files_get_a_checkpointer(url: str) -> None:
    database = Database.from_url(url)
    try:
        assert database.checkpointer is None
    finally:
        database.dispose()
