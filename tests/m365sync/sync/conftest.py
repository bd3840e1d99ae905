from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import SyncWorld, build_world

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer


@pytest.fixture
def world(sim: SimServer, tmp_path: Path) -> SyncWorld:
    """The demo tenant with empty mailboxes (the demo seed's sample mail and events left
    out), so each test's world is exactly what it builds."""
    data = read_seed(DEMO_SEED)
    for tenant in data["tenants"]:
        tenant.pop("mailboxes", None)
    sim.state.reset()
    load_seed(sim.state, data)
    members = ("adele@contoso.com", "alex@contoso.com", "diego@contoso.com")
    w = build_world(sim, tmp_path, members)
    yield w
    w.control.close()
    w.database.dispose()
