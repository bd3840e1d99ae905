"""The declarative base every model shares, and engine/session construction.

Only repositories query the database, and only the request or job boundary commits.

Several processes may write one SQLite file (the web server, ``m365sync sync`` from cron,
other commands). SQLite takes one writer at a time and makes the others wait up to the
busy timeout, except for a transaction that has already read: it can't become a writer
once another process committed after its read, and fails at once with "database is
locked". So on SQLite every transaction that writes begins with ``BEGIN IMMEDIATE``
(taking the write lock first, waiting for it if need be) at its first write or
``SAVEPOINT``; reads outside such a transaction take no lock and never wait. A lock still
held by another process after the busy timeout (``sqlite_busy_timeout_seconds``, 30 by
default) is raised as ``DatabaseBusy``, which names the cause and the fix. PostgreSQL is
untouched.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Enum, MetaData, event
from sqlalchemy.engine import Engine, ExceptionContext, create_engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import DateTime, TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """Primary keys are UUID strings made by the application, so a row's id is known before
    it is inserted (sealed secrets bind their ciphertext to it)."""
    return str(uuid.uuid4())


def enum_type(kind: type[enum.Enum], *, length: int = 32) -> Enum:
    """The column type of an enum: each member stored as its value (``"needs_reconnect"``,
    not ``NEEDS_RECONNECT``) in a string of at most ``length``, never a native database
    enum, so a new member needs no change to the column."""
    return Enum(
        kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """The database's own ``INSERT`` for ``model``'s table, which takes ``ON CONFLICT``
    (``on_conflict_do_nothing`` / ``on_conflict_do_update``): PostgreSQL's or SQLite's.
    PostgreSQL's dialect is imported only when the database is PostgreSQL, so commands on
    the embedded SQLite database do not pay for loading it."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(model.__table__)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model.__table__)
    raise RuntimeError(f"unsupported database dialect {dialect}")  # pragma: no cover


def max_length(column: Any) -> int:
    """The declared length of a ``String(n)`` column (``Model.__table__.c.name``): services
    check text against it, so a long value is refused with a message on every database
    (PostgreSQL enforces the length with an error, SQLite not at all)."""
    length = getattr(column.type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column} has no declared length")
    return length


SQLITE_BUSY_TIMEOUT_SECONDS = 30
# What pysqlite begins a transaction for (its "legacy" mode, kept: SELECTs outside a
# transaction run on their own), plus SAVEPOINT, which otherwise begins one DEFERRED.
_WRITE_STATEMENT = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE|SAVEPOINT)\b", re.IGNORECASE)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database; a power cut may roll back the last
    # commits, and a sync cursor commits with its page, so those pages are simply read again.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A statement that writes many rows inside a transaction (a page's multi-row INSERT)
    # keeps a statement journal, the pages it changed as they were, so that it can be undone
    # alone. SQLite spills it to a temporary file past 64 KiB: a page of 1,000 emails wrote
    # about 2 MB there, 4 KiB at a time, and threw it away at the statement's end. In memory
    # it costs as many MB for that moment; a first sync of 20,000 messages stores about 7 %
    # faster (``docs/sync.md``). Sorts and temporary indexes live in memory too.
    cursor.execute("PRAGMA temp_store=MEMORY")
    # WAL checkpoints stay automatic here (SQLite's default: every 1,000 pages, about 4 MB),
    # run by whichever commit crosses that mark. A ``Database`` on a SQLite file turns them
    # off and runs them from a background thread instead (``m365sync.db.checkpoint``), so a
    # sync's commits do not copy the WAL back into the database file and fsync it.
    cursor.close()


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite database file that does not exist yet with mode 0600 (and its
    directory, if created here, 0700): it holds every synced email. SQLite gives the
    ``-wal`` and ``-shm`` files it creates next to it the database file's permissions. An
    existing file's permissions are left as they are."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if parsed.query.get("uri") or parsed.query.get("mode") == "memory":
        return
    path = Path(database)
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process created it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _begin_writes_immediately(
    _conn: Any, cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    """Before the first write of a transaction, take SQLite's write lock (waiting up to the
    busy timeout) instead of letting pysqlite begin a DEFERRED transaction that may fail
    at once when it turns into a writer."""
    dbapi_connection = cursor.connection
    if not dbapi_connection.in_transaction and _WRITE_STATEMENT.match(statement):
        dbapi_connection.execute("BEGIN IMMEDIATE")


def _busy_explainer(waited_seconds: float) -> Any:
    def explain(context: ExceptionContext) -> None:
        """A lock that outlasted the busy timeout becomes ``DatabaseBusy`` (cause, fix)."""
        error = context.original_exception
        if (
            isinstance(error, sqlite3.OperationalError)
            and getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
        ):
            from m365sync.db.errors import DatabaseBusy

            engine = context.engine
            path = str(engine.url.database) if engine is not None else "(SQLite)"
            raise DatabaseBusy(path, waited_seconds) from error

    return explain


def create_db_engine(
    url: str, *, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS, **kwargs: Any
) -> Engine:
    """The engine for ``url``. On SQLite, ``sqlite_busy_timeout`` is how long a write waits
    for another process's write (sqlite3's ``timeout``, SQLite's busy timeout)."""
    if url.startswith("sqlite"):
        create_private_sqlite_file(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _begin_writes_immediately)
        event.listen(engine, "handle_error", _busy_explainer(sqlite_busy_timeout))
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
