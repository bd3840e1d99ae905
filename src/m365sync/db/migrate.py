"""Alembic, driven from code: ``migrate()`` on startup and from ``m365sync db upgrade``.

The Alembic environment ships inside the package (``m365sync/alembic.ini`` and
``m365sync/migrations``) so an installed m365sync can migrate without a checkout.
Revisions form a single line of history; a new revision's ``down_revision`` is the
current head (``m365sync db current`` shows it; or ``alembic -c src/m365sync/alembic.ini
heads``).

Every command and process calls ``migrate()`` when it starts, so a database already at the
head must cost next to nothing: ``migrate()`` first reads ``alembic_version`` (one SELECT)
and compares it with the head named by the revision files (read as text, see
``script_head``); Alembic, the models and the migration lock are loaded only when an
upgrade is due.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

import m365sync

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

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
    and then find nothing to do. A database already at the head is recognised with one
    SELECT, without loading Alembic."""
    head = script_head() if revision == "head" else None
    if head is not None and _stored_revisions(engine) == {head}:
        return
    from alembic import command

    with upgrade_lock(engine):
        command.upgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision(?:\s*:[^=]*)?\s*=\s*(?:None|[\"']([^\"']+)[\"'])", re.MULTILINE
)


@cache
def script_head() -> str | None:
    """The head revision, read from the revision files as text (no Alembic import): the
    one revision no other revision names as its ``down_revision``. ``None`` when the files
    don't read as one line of history, and ``migrate()`` then leaves the answer to Alembic
    (a test checks this agrees with Alembic's own head)."""
    versions = Path(str(resources.files("m365sync").joinpath("migrations", "versions")))
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revisions(engine: Engine) -> set[str] | None:
    """The revisions ``alembic_version`` holds; ``None`` when it can't be read (a new
    database has no such table)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return None
    return {str(row[0]) for row in rows}


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
