"""A statement that writes many rows inside a transaction (a sync page's multi-row INSERT)
keeps its statement journal in memory, so storing a page writes nothing to disk before
its commit (SQLite would otherwise spill the journal to a temporary file, 4 KiB at a time,
and throw it away at the statement's end)."""

from __future__ import annotations

from pathlib import Path

from m365sync.db import create_db_engine

FILL = (
    "INSERT INTO item WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
    "WHERE i < {rows}) SELECT hex(randomblob(16)), hex(randomblob(64)) FROM n"
)


def write_calls() -> int:
    """This thread's write system calls so far (Linux): SQLite writes a statement's journal
    in the thread running the statement, and other threads of the test run don't count."""
    for line in Path("/proc/thread-self/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("/proc/thread-self/io has no syscw line")


def test_a_many_row_insert_in_a_transaction_writes_nothing_before_its_commit(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm365sync.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE item (key TEXT PRIMARY KEY, value TEXT)")
            connection.exec_driver_sql(FILL.format(rows=10_000))
        with engine.begin() as connection:
            connection.exec_driver_sql(FILL.format(rows=10))  # the transaction has begun
            before = write_calls()
            # Random keys land all over the existing index: about a hundred of its pages
            # change, far more than the 64 KiB SQLite keeps in memory by default, and far
            # fewer than would fill the page cache (which would write to the WAL early).
            connection.exec_driver_sql(FILL.format(rows=1_000))
            written = write_calls() - before
            count = connection.exec_driver_sql("SELECT count(*) FROM item").scalar()
        assert count == 11_010
        assert written == 0
    finally:
        engine.dispose()
