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


def test_lean_link_tables_keep_their_rows(tmp_path):
    """0006 rebuilds the SQLite link tables without rowid: links logged before it stay."""
    from sqlalchemy import text

    from m365sync.db.migrate import migrate
    from m365sync.db.session import Database

    database = Database.from_url(f"sqlite:///{tmp_path / 'm365sync.db'}")
    migrate(database.engine, "0005_sealed_client_state")
    with database.engine.begin() as connection:
        for statement in (
            "INSERT INTO organizations (id, name, slug, created_at) "
            "VALUES ('o1', 'Contoso', 'contoso', '2026-11-30 00:00:00')",
            "INSERT INTO crm_activities (id, organization_id, kind, external_id, subject,"
            " body_type, headers_only, participants, is_all_day, location, is_cancelled,"
            " send_invitations, status, importance, modified_at, change_seq, created_at)"
            " VALUES ('a1', 'o1', 'email', '<m1@fabrikam.com>', 'Hello', 'text', 0, '[]',"
            " 0, '', 0, 0, '', 'normal', '2026-11-30 00:00:00', 0, '2026-11-30 00:00:00')",
            "INSERT INTO crm_activity_people VALUES ('a1', 'contact', 'c1')",
            "INSERT INTO crm_activity_records VALUES ('a1', 'account', 'acc1')",
        ):
            connection.execute(text(statement))
    migrate(database.engine)
    with database.engine.connect() as connection:
        people = connection.execute(text("SELECT * FROM crm_activity_people")).all()
        records = connection.execute(text("SELECT * FROM crm_activity_records")).all()
        ddl = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'crm_activity_people'")
        ).scalar_one()
    database.dispose()
    assert people == [("a1", "contact", "c1")]
    assert records == [("a1", "account", "acc1")]
    assert "WITHOUT ROWID" in ddl
