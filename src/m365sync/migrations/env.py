"""Alembic environment: one metadata (every ``m365sync.*.models``), one history.

The engine comes from ``config.attributes["engine"]`` (``m365sync.db.migrate``), else from
``sqlalchemy.url``, else from the settings. SQLite runs in batch mode so ALTERs work.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from m365sync.db import Base, create_db_engine, load_models
from m365sync.settings import get_settings

load_models()
config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    return create_db_engine(url)


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
