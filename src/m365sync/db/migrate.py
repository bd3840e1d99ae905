"""Alembic, driven from code: ``migrate()`` on startup and from ``m365sync db upgrade``.

The Alembic environment ships inside the package (``m365sync/alembic.ini`` and
``m365sync/migrations``) so an installed m365sync can migrate without a checkout.
Revisions form a single line of history; a new revision's ``down_revision`` is the
current head (``m365sync db current`` shows it; or ``alembic -c src/m365sync/alembic.ini
heads``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

import m365sync

try:
    import fcntl
except ImportError:  # not on Windows: SQLite migrations are not locked there
    fcntl = None  # type: ignore[assignment]


def load_models() -> None:
    """Import every ``m365sync.<package>.models`` module so ``Base.metadata`` is complete."""
    for info in pkgutil.walk_packages(m365sync.__path__, prefix="m365sync."):
        if info.name.rsplit(".", 1)[-1] == "models" and ".migrations" not in info.name:
            importlib.import_module(info.name)


def alembic_config(engine: Engine | None = None) -> Config:
    ini = Path(str(resources.files("m365sync").joinpath("alembic.ini")))
    config = Config(str(ini))
    config.set_main_option("script_location", str(ini.parent / "migrations"))
    if engine is not None:
        config.attributes["engine"] = engine
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (idempotent: a no-op at head). Several
    processes may start at once: one migrates, the others wait for it (``upgrade_lock``)
    and then find nothing to do."""
    with upgrade_lock(engine):
        command.upgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


MIGRATION_LOCK_KEY = 0x6D333635  # "m365": PostgreSQL advisory lock id of migrations


@contextmanager
def upgrade_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's migration lock for the block: on PostgreSQL a session advisory
    lock, on a SQLite file an exclusive lock on ``<database>.migrate-lock`` beside it (an
    in-memory database has no other process to wait for). Waits for a holder to finish."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
        return
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:") or fcntl is None:
        yield
        return
    lock_path = Path(path).with_name(Path(path).name + ".migrate-lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
