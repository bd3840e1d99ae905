"""Storage: SQLAlchemy 2 models on SQLite (default, WAL) or PostgreSQL, migrated by Alembic.

Every model of every package subclasses ``Base`` and lives in a module named ``models``
inside a ``m365sync`` package (``m365sync.<capability>.models``): ``load_models()`` imports
them all, so Alembic sees one metadata and keeps ONE migration history in
``m365sync/migrations/versions``. ``migrate()`` brings a database to the head revision; it
runs on startup and through ``m365sync db upgrade``.

On SQLite, transactions that write take the write lock when they begin their first write
(``BEGIN IMMEDIATE``), so concurrent writers wait for each other instead of failing, and a
lock that outlasts the busy timeout is raised as ``DatabaseBusy`` (see ``db.base``).
"""

from m365sync.db.base import Base, UTCDateTime, create_db_engine, new_id, session_factory, utcnow
from m365sync.db.errors import DatabaseBusy
from m365sync.db.migrate import current_revision, head_revision, load_models, migrate
from m365sync.db.session import Database, database_from_settings

__all__ = [
    "Base",
    "Database",
    "DatabaseBusy",
    "UTCDateTime",
    "create_db_engine",
    "current_revision",
    "database_from_settings",
    "head_revision",
    "load_models",
    "migrate",
    "new_id",
    "session_factory",
    "utcnow",
]
