"""Fixtures for the sync tests: the synced organization (``support.sync_world``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m365sim.server import SimServer
from m365sync.db.session import Database
from support.sync_world import MEMBERS, SyncWorld, build_world, empty_demo_tenant


@pytest.fixture
def world(sim: SimServer, tmp_path: Path) -> Iterator[SyncWorld]:
    """The synced organization on a SQLite file."""
    empty_demo_tenant(sim)
    w = build_world(sim, tmp_path, MEMBERS)
    yield w
    w.control.close()
    w.database.dispose()


@pytest.fixture
def db_world(sim: SimServer, tmp_path: Path, db: Database) -> Iterator[SyncWorld]:
    """The synced organization on the ``db`` fixture's database: once on SQLite, once on
    PostgreSQL. A test module opts in by defining ``world`` as this fixture."""
    empty_demo_tenant(sim)
    w = build_world(sim, tmp_path, MEMBERS, database=db)
    yield w
    w.control.close()
