"""Background WAL checkpoints for a SQLite file database.

SQLite's automatic checkpoint runs inside whichever commit pushes the WAL past its
threshold, so that commit also copies the WAL back into the database file and fsyncs
both, stalling a sync's writer for hundreds of milliseconds. SQLite's documentation
recommends, for this case, turning automatic checkpoints off and running them from a
separate thread: ``WalCheckpointer`` is that thread.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["WalCheckpointer"]

log = logging.getLogger(__name__)

# When a writer starts the WAL over, it also cuts the file down to this size, so a first
# sync does not leave a WAL of hundreds of MB behind.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# A WAL holding more frames than this is started over (see ``_copy_back``); 4 KiB is
# SQLite's default page size, which m365sync keeps.
RESTART_AFTER_FRAMES = JOURNAL_SIZE_LIMIT // 4096
CATCH_UP_ROUNDS = 5
# PASSIVE checkpoints never wait; this bounds how long RESTART waits for the writer and
# for readers (holding writers off meanwhile), and rides out a brief lock otherwise.
BUSY_TIMEOUT_SECONDS = 0.1
STOP_TIMEOUT_SECONDS = 5.0


class WalCheckpointer:
    """Checkpoints one SQLite database file from a daemon thread, every ``interval`` seconds
    in which the ``-wal`` file changed.

    The thread belongs to the process that started it: a forked child starts its own on its
    first connection checkout. It never raises: a failed checkpoint is logged and tried
    again on the next tick. ``stop`` ends it after a last TRUNCATE checkpoint, which empties
    the WAL unless another connection is in the middle of a transaction.
    """

    def __init__(self, path: Path | str, interval: float = 1.0) -> None:
        self.path = Path(path).resolve()
        self.interval = interval
        self._wal_path = Path(f"{self.path}-wal")
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._locks: dict[int, threading.Lock] = {}

    @classmethod
    def attach_to(cls, engine: Engine, interval: float = 1.0) -> WalCheckpointer | None:
        """A started checkpointer for ``engine``'s database file, the engine's connections
        set to leave checkpoints to it; ``None`` (and automatic checkpoints) unless the
        engine is on a SQLite file."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.query.get("uri"):  # a "file:" URI is not a path we could watch
            return None
        checkpointer = cls(url.database, interval)
        event.listen(engine, "connect", _leave_checkpoints_to_the_thread)
        event.listen(engine, "checkout", checkpointer._on_checkout)
        checkpointer.start()
        return checkpointer

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread in this process unless it is running; cheap when it is."""
        if self.running:
            return
        with self._lock_for_this_process():
            if self.running:
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._stopping,),
                name=f"wal-checkpointer:{self.path.name}",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the thread, waiting up to ``timeout`` for its last checkpoint."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _lock_for_this_process(self) -> threading.Lock:
        # A lock that another thread held when the process forked stays held in the child
        # forever; a lock per process id is always fresh in a child.
        return self._locks.setdefault(os.getpid(), threading.Lock())

    def _on_checkout(self, *_: Any) -> None:
        self.start()

    def _run(self, stopping: threading.Event) -> None:
        connection = _CheckpointConnection(self.path)
        checkpointed: tuple[int, int] | None = None
        try:
            while not stopping.wait(self.interval):
                stamp = _wal_stamp(self._wal_path)
                if stamp is not None and stamp != checkpointed and _copy_back(connection):
                    checkpointed = stamp
            if _wal_stamp(self._wal_path) is not None:
                connection.checkpoint("TRUNCATE")
        finally:
            connection.close()


def _leave_checkpoints_to_the_thread(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    cursor.close()


def _wal_stamp(wal_path: Path) -> tuple[int, int] | None:
    """The WAL's size and modification time; ``None`` when there is no WAL to copy back."""
    try:
        stat = wal_path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if stat.st_size else None


def _copy_back(connection: _CheckpointConnection) -> bool:
    """Copy the WAL back into the database file; True when all of it was copied.

    PASSIVE holds no writer up. But while commits keep coming, the WAL is never wholly
    copied back at the moment a writer begins, so no writer starts it over, and it grows by
    every commit. Once it holds more than ``RESTART_AFTER_FRAMES``, more PASSIVE rounds
    catch up with the commits made meanwhile, then a RESTART checkpoint makes the next
    writer start the WAL over. RESTART holds writers off while it copies what the last
    round left (typically one commit) and waits for readers (up to the busy timeout).
    """
    result = connection.checkpoint("PASSIVE")
    if result is None or not result.complete:
        return False
    if result.frames > RESTART_AFTER_FRAMES:
        for _ in range(CATCH_UP_ROUNDS):
            previous = result
            result = connection.checkpoint("PASSIVE")
            if result is None or result.frames == previous.frames:
                break
        connection.checkpoint("RESTART")
    return True


class _Checkpoint(NamedTuple):
    """The row ``PRAGMA wal_checkpoint`` returns."""

    busy: int
    frames: int
    copied: int

    @property
    def complete(self) -> bool:
        return self.busy == 0 and self.frames == self.copied


class _CheckpointConnection:
    """The thread's own connection: opened when first needed (never creating the database
    file), closed after any failure so that the next tick starts afresh."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._uri = f"{path.as_uri()}?mode=rw"
        self._connection: sqlite3.Connection | None = None
        self._last_warning = ""

    def checkpoint(self, mode: str) -> _Checkpoint | None:
        """``PRAGMA wal_checkpoint(mode)``; ``None`` when it failed."""
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self._uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
                )
            row = self._connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except Exception as exc:  # the thread must outlive any failure; the next tick retries
            self._log_failure(exc)
            self.close()
            return None
        return _Checkpoint(*row)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _log_failure(self, exc: Exception) -> None:
        message = f"Checkpoint of the SQLite WAL of {self._path} failed: {exc}"
        error_code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if error_code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            log.debug("%s", message)
        elif message == self._last_warning:
            log.debug("%s (again)", message)
        else:
            log.warning("%s", message)
            self._last_warning = message
