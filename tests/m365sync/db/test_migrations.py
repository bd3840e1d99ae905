"""One migration history, and it matches the models (on SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from m365sync.db import Base, current_revision, head_revision, load_models
from m365sync.db.migrate import alembic_config


def test_single_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, (
        f"several migration heads {heads}: chain new revisions after the current head"
    )


def test_migrations_match_models(db):
    load_models()
    assert current_revision(db.engine) == head_revision()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], diff
