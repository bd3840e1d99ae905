"""Fixtures for Salesforce as the CRM: the synced organization (m365sim) next to sfsim's demo
org, on SQLite and PostgreSQL (``support.salesforce_target_world``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m365sim.server import SimServer
from m365sync.db.session import Database
from sfsim import SfServer
from support.salesforce_target_world import SalesforceTarget, build_target


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
