"""pytest fixtures for running m365sim in-process (``pytest -p m365sim.testing`` or import).

- ``sim_server`` (session): one running m365sim on a free port; ``SSL_CERT_FILE`` and
  ``REQUESTS_CA_BUNDLE`` point at its CA bundle for the session, so MSAL, requests,
  httpx and exchangelib trust it unmodified.
- ``sim`` (function): the same server, reset (state and ``SimConfig``, so a setting an
  earlier test changed never leaks) and loaded with the demo seed for each test,
  with the latency model off (profile ``"none"``: answers come back as fast as m365sim
  computes them) unless the test is marked ``@pytest.mark.realistic_latency``, which turns
  on the realistic profile ``m365sim serve`` uses (``m365sim.latency``). Tests that exercise
  throttling or a client's concurrency take the marker, or Outlook's concurrency limit can
  never bite.
- ``demo_tenant`` (function): the demo seed's ``Tenant``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from m365sim.directory.models import Tenant
from m365sim.latency import apply_latency_profile
from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sim.state import SimConfig

REALISTIC_LATENCY_MARKER = "realistic_latency"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{REALISTIC_LATENCY_MARKER}: m365sim answers with its realistic latency model "
        "(the default is no latency)",
    )


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimServer]:
    server = SimServer(data_dir=tmp_path_factory.mktemp("m365sim"))
    saved = {
        name: os.environ.get(name)
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    }
    for name in saved:
        os.environ[name] = str(server.tls.ca_bundle)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def sim(sim_server: SimServer, request: pytest.FixtureRequest) -> SimServer:
    sim_server.state.reset()
    sim_server.state.config = SimConfig()  # what an earlier test changed does not leak
    realistic = request.node.get_closest_marker(REALISTIC_LATENCY_MARKER) is not None
    apply_latency_profile(sim_server.state.config, "realistic" if realistic else "none")
    load_seed(sim_server.state, read_seed(DEMO_SEED))
    return sim_server


@pytest.fixture
def demo_tenant(sim: SimServer) -> Tenant:
    tenant = sim.state.find_tenant("contoso.com")
    assert tenant is not None
    return tenant
