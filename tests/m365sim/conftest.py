"""Shared fixtures for m365sim tests: an HTTP client for the running simulator, and a clean
``SimConfig`` after every test. Token helpers live in ``sim_tokens`` (re-exported here)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import fields

import httpx
import pytest
from sim_tokens import (
    SERVICE_APP_ID,
    USER_APP_ID,
    bearer,
    mint_app_token,
    mint_user_token,
    wait_for,
)

from m365sim.server import SimServer
from m365sim.state import SimConfig

__all__ = [
    "SERVICE_APP_ID",
    "USER_APP_ID",
    "bearer",
    "mint_app_token",
    "mint_user_token",
    "wait_for",
]


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    """An httpx client for the running simulator (trusting its CA, no proxies)."""
    context = ssl.create_default_context(cafile=str(sim.tls.ca_pem))
    with httpx.Client(base_url=sim.url, verify=context, trust_env=False, timeout=20) as client:
        yield client


@pytest.fixture(autouse=True)
def _restore_sim_config(request: pytest.FixtureRequest) -> Iterator[None]:
    """``SimState.reset()`` keeps ``SimConfig``; put back the defaults a test changed."""
    yield
    if "sim_server" in request.fixturenames:
        server: SimServer = request.getfixturevalue("sim_server")
        defaults = SimConfig()
        for f in fields(SimConfig):
            setattr(server.state.config, f.name, getattr(defaults, f.name))
