"""Fixtures for Salesforce as the CRM: the synced organization (m365sim) next to sfsim's demo
org, on SQLite and PostgreSQL.

The sync harness (``tests/m365sync/sync/harness.py``) and the Salesforce test world
(``tests/m365sync/salesforce/salesforce_world.py``) are shared with those packages' tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
for shared in (HERE.parent / "sync", HERE.parent / "salesforce"):
    if str(shared) not in sys.path:
        sys.path.insert(0, str(shared))

from salesforce_target_world import SalesforceTarget, build_target  # noqa: E402

from m365sim.server import SimServer  # noqa: E402
from m365sync.db.session import Database  # noqa: E402
from sfsim import SfServer  # noqa: E402


@pytest.fixture
def target(
    sim: SimServer, sf: SfServer, tmp_path: Path, db: Database
) -> Iterator[SalesforceTarget]:
    """Contoso synced from m365sim, its CRM Salesforce (sfsim's demo org, with a user for
    each member), on the ``db`` fixture's database (SQLite, then PostgreSQL)."""
    world = build_target(sim, sf, tmp_path, db)
    try:
        yield world
    finally:
        world.close()
