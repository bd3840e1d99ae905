"""Fixtures for the identity tests: a browser that walks the sign-in pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from m365sim.server import SimServer
from support.entra_client import Browser


@pytest.fixture
def browser(sim: SimServer) -> Iterator[Browser]:
    walker = Browser(sim)
    with walker.client:
        yield walker
