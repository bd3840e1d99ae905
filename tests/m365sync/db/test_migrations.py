"""One migration history, and it matches the models (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.models import ActivityKind
from m365sync.db import Base, current_revision, head_revision, load_models
from m365sync.db.migrate import alembic_config, migrate, script_head
from m365sync.db.session import Database
from support.imports import loaded_modules


def test_single_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, (
        f"several migration heads {heads}: chain new revisions after the current head"
    )


def test_the_head_read_from_the_revision_files_is_alembics():
    assert script_head() == head_revision()


def test_a_database_at_the_head_is_recognised_without_loading_alembic(db):
    """Every command migrates when it starts: at the head that is one SELECT, and neither
    Alembic nor the models are imported."""
    url = db.engine.url.render_as_string(hide_password=False)
    loaded = loaded_modules(
        "from m365sync.db import Database, migrate\n"
        f"database = Database.from_url({url!r})\n"
        "migrate(database.engine)\n"
        "database.dispose()"
    )

    assert "alembic" not in loaded
    assert not {m for m in loaded if m.endswith(".models") and m.startswith("m365sync.")}


def test_a_database_behind_the_head_is_upgraded(tmp_path):
    database = Database.from_url(f"sqlite:///{tmp_path / 'm365sync.db'}")
    try:
        migrate(database.engine, "0012_graph_id_sizes")
        assert current_revision(database.engine) == "0012_graph_id_sizes"

        migrate(database.engine)

        assert current_revision(database.engine) == head_revision()
    finally:
        database.dispose()


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A new, empty database (nothing migrated yet): a SQLite file, or a PostgreSQL
    database of its own next to the test session's."""
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite:///{tmp_path / 'm365sync.db'}")
        yield database
        database.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip("PostgreSQL unreachable")
    name = f"m365sync_migrate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database.from_url(
        make_url(url).set(database=name).render_as_string(hide_password=False)
    )
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_email_links_become_one_row_per_mailbox_item(blank_database: Database) -> None:
    """0008 moves email links to ``crm_email_copies`` (one row per mailbox item): the
    mailboxes holding an email still hold it after the upgrade, meetings keep their member
    links, and a link that had already left its mailbox is not revived."""
    engine = blank_database.engine
    migrate(engine, "0006_lean_activity_indexes")
    when = "'2026-11-30 00:00:00+00:00'"
    activity = (
        "INSERT INTO crm_activities (id, organization_id, kind, external_id, subject,"
        " body_type, headers_only, participants, is_all_day, location, is_cancelled,"
        " send_invitations, status, importance, modified_at, change_seq, created_at)"
        " VALUES ('{id}', 'o1', '{kind}', '{ext}', 'Hello', 'text', false, '[]', false, '',"
        f" false, false, '', 'normal', {when}, 0, {when})"
    )
    link = (
        "INSERT INTO crm_activity_members (activity_id, member_id, graph_item_id, folder,"
        " pushed_seq, removed_at) VALUES ('{aid}', '{mid}', '{item}', '{folder}', {seq},"
        " {removed})"
    )
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO organizations (id, name, slug, created_at)"
            f" VALUES ('o1', 'Contoso', 'contoso', {when})",
            "INSERT INTO members (id, organization_id, email, name, role, created_at)"
            f" VALUES ('adele', 'o1', 'adele@contoso.com', '', 'user', {when}),"
            f" ('alex', 'o1', 'alex@contoso.com', '', 'user', {when})",
            activity.format(id="mail", kind="email", ext="<m1@fabrikam.com>"),
            activity.format(id="meeting", kind="event", ext="ical-1"),
            link.format(aid="mail", mid="adele", item="i-1", folder="inbox", seq=0, removed="NULL"),
            link.format(aid="mail", mid="alex", item="i-2", folder="inbox", seq=0, removed=when),
            link.format(aid="meeting", mid="adele", item="e-1", folder="", seq=3, removed="NULL"),
        ):
            connection.execute(text(statement))

    migrate(engine)

    with engine.connect() as connection:
        email_copies = connection.execute(
            text("SELECT member_id, graph_item_id, activity_id, folder FROM crm_email_copies")
        ).all()
        member_links = connection.execute(
            text(
                "SELECT activity_id, member_id, graph_item_id, pushed_seq FROM crm_activity_members"
            )
        ).all()
    assert email_copies == [("adele", "i-1", "mail", "inbox")]
    assert member_links == [("meeting", "adele", "e-1", 3)]
    with blank_database.session() as session:
        crm = EmbeddedCrm(session, "o1")
        assert crm.linked_item_ids(ActivityKind.EMAIL, "adele", folder="inbox") == {"i-1"}
        assert crm.linked_item_ids(ActivityKind.EVENT, "adele") == {"e-1"}
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            ddl = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'crm_email_copies'")
            ).scalar_one()
        assert "WITHOUT ROWID" in ddl

    # Back down: one link per (email, member) again, the copy of the first folder.
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO crm_email_copies (member_id, graph_item_id, activity_id, folder)"
                " VALUES ('adele', 'i-3', 'mail', 'sentitems')"
            )
        )
    command.downgrade(alembic_config(engine), "0006_lean_activity_indexes")
    with engine.connect() as connection:
        email_links = connection.execute(
            text(
                "SELECT member_id, graph_item_id, folder FROM crm_activity_members"
                " WHERE activity_id = 'mail'"
            )
        ).all()
    assert email_links == [("adele", "i-1", "inbox")]
