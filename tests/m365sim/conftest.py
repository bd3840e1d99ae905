"""Fixtures for m365sim tests: HTTP clients for the running simulator and a clean
``SimConfig`` after every test. The helpers they use live in ``sim_tokens``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields

import httpx
import pytest

from m365sim.directory.models import Tenant
from m365sim.server import SimServer
from m365sim.state import SimConfig
from support.sim_tokens import FreshToken, GraphFactory, mint_token, sim_client


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    """An httpx client on the simulator's origin (trusting its CA, no proxies)."""
    with sim_client(sim) as client:
        yield client


@pytest.fixture
def control(http: httpx.Client) -> httpx.Client:
    """``http``, named for tests that only drive the ``/_sim`` control API."""
    return http


@pytest.fixture
def graph(sim: SimServer, demo_tenant: Tenant) -> Iterator[GraphFactory]:
    """``graph(roles=[...])`` → app-only client (the service account unless ``app_id``);
    ``graph("lee@contoso.com", scopes=[...])`` → delegated. Clients are on ``/v1.0`` and
    get a fresh token for every request. Area conftests override the default roles/scopes.
    """
    clients: list[httpx.Client] = []

    def make(
        user: str | None = None,
        *,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        app_id: str | None = None,
    ) -> httpx.Client:
        roles, scopes = tuple(roles), tuple(scopes)
        client = sim_client(
            sim,
            base_url=sim.graph_url,
            auth=FreshToken(
                lambda: mint_token(
                    sim, demo_tenant, user, roles=roles, scopes=scopes, app_id=app_id
                )
            ),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def _restore_sim_config(request: pytest.FixtureRequest) -> Iterator[None]:
    """``SimState.reset()`` keeps ``SimConfig``; put back the defaults a test changed."""
    yield
    if "sim_server" in request.fixturenames:
        server: SimServer = request.getfixturevalue("sim_server")
        defaults = SimConfig()
        for f in fields(SimConfig):
            setattr(server.state.config, f.name, getattr(defaults, f.name))
