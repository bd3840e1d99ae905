"""Backups of a SQLite database, taken while m365sync runs, and restoring one.

``backup`` copies the live database with SQLite's online backup API: a consistent copy of
one moment, taken page by page while other processes keep writing (they wait only for a
few milliseconds at a time). ``restore`` checks that a file is an m365sync database (its
integrity and its schema revision), copies it over the live database the same way, then
brings it to this version's schema. PostgreSQL is backed up with its own tools
(``pg_dump`` / ``pg_restore``, docs/deploy.md).

The secret key is not in the database: keep it (the key file in the data directory, or the
secret key setting) with the backups, or the stored secrets can't be opened after a
restore.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from m365sync.db.migrate import head_revision, migrate
from m365sync.db.session import Database
from m365sync.operations.errors import BackupNotSupported, BackupTargetExists, NotABackup

__all__ = ["BackupReport", "backup", "restore"]


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size_bytes: int
    revision: str | None


def _sqlite_only(database: Database, doing: str) -> None:
    if database.engine.dialect.name != "sqlite" or not database.engine.url.database:
        raise BackupNotSupported(
            f"m365sync {doing} SQLite database files only; this database is "
            f"{database.engine.dialect.name}.",
            fix="Use PostgreSQL's own tools: pg_dump --format=custom to back it up, and "
            "pg_restore --clean to restore it (see the deployment guide).",
        )


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def backup(database: Database, target: Path) -> BackupReport:
    """A consistent copy of the live SQLite database in ``target`` (a new file, mode
    0600: it holds every synced email)."""
    _sqlite_only(database, "backs up")
    if target.exists():
        raise BackupTargetExists(
            f"{target} already exists; a backup never writes over a file.",
            fix="Choose a new file name, or move the old file away first.",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch(mode=0o600, exist_ok=False)
    copy = sqlite3.connect(target)
    try:
        raw = database.engine.raw_connection()
        try:
            live = raw.driver_connection
            assert isinstance(live, sqlite3.Connection)
            live.backup(copy, pages=1024)
        finally:
            raw.close()
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        revision = _revision(copy)
    except BaseException:
        copy.close()
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    copy.close()
    os.chmod(target, 0o600)
    return BackupReport(target, target.stat().st_size, revision)


def restore(database: Database, source: Path) -> BackupReport:
    """Replace the live SQLite database's content with the backup in ``source``, then
    upgrade its schema to this version's. Stop the other m365sync processes first: they
    would keep working from what they read before."""
    _sqlite_only(database, "restores")
    if not source.is_file():
        raise NotABackup(
            f"{source} is not a file.", fix="Give the path of a file made by the backup command."
        )
    try:
        backup_file = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise NotABackup(
            f"{source} can't be opened as a SQLite database ({exc}).",
            fix="Give the path of a file made by the backup command.",
        ) from exc
    try:
        try:
            check = backup_file.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise NotABackup(
                f"{source} is not a SQLite database ({exc}).",
                fix="Give the path of a file made by the backup command.",
            ) from exc
        if not check or check[0] != "ok":
            raise NotABackup(
                f"{source} is damaged (SQLite's check says: {check[0] if check else 'nothing'}).",
                fix="Restore an older backup.",
            )
        revision = _revision(backup_file)
        if revision is None:
            raise NotABackup(
                f"{source} is a SQLite database, but not an m365sync one (it has no schema "
                "revision).",
                fix="Give the path of a file made by the backup command.",
            )
        if not _known_revision(revision):
            raise NotABackup(
                f"{source} comes from a newer m365sync (schema revision {revision}, unknown "
                f"to this version, whose newest is {head_revision()}).",
                fix="Restore it with the version of m365sync that made it, or a newer one.",
            )
        raw = database.engine.raw_connection()
        try:
            live = raw.driver_connection
            assert isinstance(live, sqlite3.Connection)
            backup_file.backup(live, pages=1024)
        finally:
            raw.close()
    finally:
        backup_file.close()
    database.engine.dispose()  # pooled connections may have cached the old schema
    migrate(database.engine)
    path = Path(str(database.engine.url.database))
    return BackupReport(source, path.stat().st_size, revision)


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from m365sync.db.migrate import alembic_config

    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except Exception:
        return False
    return True
