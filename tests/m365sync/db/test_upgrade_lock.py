"""Several processes upgrading one database at once (every process migrates as it starts):
one migrates, the others wait for it, and all of them start."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from m365sync.db import Database, current_revision, head_revision

POSTGRES_URL = os.environ.get(
    "M365SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    try:
        admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        name = f"m365sync_lock_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"):
            raise
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_three_processes_upgrading_at_once_all_succeed(empty_database: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATABASE_URL": empty_database,
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "m365sync", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers = [(p.wait(120), *p.communicate()) for p in processes]

    assert [code for code, _, _ in answers] == [0, 0, 0], answers
    database = Database.from_url(empty_database)
    try:
        assert current_revision(database.engine) == head_revision()
    finally:
        database.dispose()
