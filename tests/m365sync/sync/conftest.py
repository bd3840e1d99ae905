from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import SyncWorld, build_world

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sync.db.session import Database

MEMBERS = ("adele@contoso.com", "alex@contoso.com", "diego@contoso.com")


def _empty_demo_tenant(sim: SimServer) -> None:
    """The demo tenant with empty mailboxes (the demo seed's sample mail and events left
    out), so each test's world is exactly what it builds."""
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
    sim.state.reset()
    load_seed(sim.state, data)


@pytest.fixture
def world(sim: SimServer, tmp_path: Path) -> Iterator[SyncWorld]:
    """The synced organization on a SQLite file."""
    _empty_demo_tenant(sim)
    w = build_world(sim, tmp_path, MEMBERS)
    yield w
    w.control.close()
    w.database.dispose()


@pytest.fixture
def db_world(sim: SimServer, tmp_path: Path, db: Database) -> Iterator[SyncWorld]:
    """The synced organization on the ``db`` fixture's database: once on SQLite, once on
    PostgreSQL. A test module opts in by defining ``world`` as this fixture."""
    _empty_demo_tenant(sim)
    w = build_world(sim, tmp_path, MEMBERS, database=db)
    yield w
    w.control.close()
