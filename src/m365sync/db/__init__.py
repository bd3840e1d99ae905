"""Storage: SQLAlchemy 2 models on SQLite (default, WAL) or PostgreSQL, migrated by Alembic."""

from m365sync.db.base import Base, create_db_engine, session_factory

__all__ = ["Base", "create_db_engine", "session_factory"]
