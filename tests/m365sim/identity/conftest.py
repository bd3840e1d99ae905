"""Fixtures for the identity tests: a browser that walks the sign-in pages, a control client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
from entra_client import Browser

from m365sim.server import SimServer


@pytest.fixture
def browser(sim: SimServer) -> Iterator[Browser]:
    walker = Browser(sim)
    with walker.client:
        yield walker


@pytest.fixture
def control(sim: SimServer) -> Iterator[httpx.Client]:
    """An HTTP client for the ``/_sim`` control API."""
    with httpx.Client(
        base_url=sim.url, verify=ssl.create_default_context(cafile=sim.tls.ca_pem)
    ) as client:
        yield client
