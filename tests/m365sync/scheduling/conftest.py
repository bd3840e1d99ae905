"""Fixtures for the scheduling tests (the world itself is built in ``scheduling_world``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from scheduling_world import SchedulingWorld, build_world

from m365sim.server import SimServer
from m365sync.db.session import Database


@pytest.fixture
def world(sim: SimServer, db: Database, tmp_path: Path) -> Iterator[SchedulingWorld]:
    built = build_world(sim, db, tmp_path)
    try:
        yield built
    finally:
        built.control.close()


@pytest.fixture
def client(world: SchedulingWorld) -> Iterator[TestClient]:
    with TestClient(world.app) as test_client:
        yield test_client
