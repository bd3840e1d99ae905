"""One ``Database`` per process: the engine and the session factory, built from settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from m365sync.db.base import create_db_engine, session_factory
from m365sync.db.checkpoint import WalCheckpointer
from m365sync.settings import Settings


@dataclass
class Database:
    """The engine and its session factory.

    ``session()`` is for boundaries (a request, a job, a CLI command): it commits when the
    block ends normally and rolls back on an exception. Code below the boundary receives a
    ``Session`` and never commits. On SQLite a session that only reads takes no lock; the
    first write begins the transaction with ``BEGIN IMMEDIATE``, which waits for another
    process's write to finish (up to the busy timeout, then ``DatabaseBusy``), so a session
    should not call Microsoft between its first write and its end. On a SQLite file,
    ``from_url`` also starts the WAL checkpointer, and ``dispose()`` stops it.
    """

    engine: Engine
    sessions: sessionmaker[Session]
    checkpointer: WalCheckpointer | None = None

    @classmethod
    def from_url(
        cls, url: str, *, checkpoint_interval: float = 1.0, **engine_kwargs: Any
    ) -> Database:
        engine = create_db_engine(url, **engine_kwargs)
        return cls(
            engine=engine,
            sessions=session_factory(engine),
            checkpointer=WalCheckpointer.attach_to(engine, checkpoint_interval),
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.checkpointer is not None:
            self.checkpointer.stop()


def database_from_settings(settings: Settings) -> Database:
    """The database the settings name; creates ``data_dir`` (mode 0700) for the default
    SQLite file."""
    if not settings.database_url:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Database.from_url(
        settings.resolved_database_url, sqlite_busy_timeout=settings.sqlite_busy_timeout_seconds
    )
