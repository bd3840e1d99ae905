"""pytest fixtures for running sfsim in-process (``pytest -p sfsim.testing`` or import).

- ``sf_server`` (session): one running sfsim on a free port; ``SSL_CERT_FILE``,
  ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` point at its CA bundle for the session
  (which also holds the bundle they named before, so m365sim stays trusted), so
  requests, simple-salesforce and httpx trust it unmodified.
- ``sf`` (function): the same server, reset and loaded with the demo seed, no latency.
- ``sf_session`` (function): a ``requests.Session`` trusting sfsim whose
  ``login.salesforce.com``, ``test.salesforce.com`` and ``*.my.salesforce.com`` requests
  reach sfsim (see ``SalesforceHostsAdapter``), for simple-salesforce's own login flows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from sfsim.seed import DEMO_SEED, load_seed, read_seed
from sfsim.server import SfServer
from sfsim.state import SfConfig


class SalesforceHostsAdapter(HTTPAdapter):
    """A transport that sends requests for Salesforce's host names to sfsim.

    The URL's host becomes sfsim's address and the ``Host`` header keeps the Salesforce
    name, so sfsim knows which login host was used. Nothing in the client changes; mount
    it on a ``requests.Session`` for ``https://login.salesforce.com`` and the like.
    """

    def __init__(self, server: SfServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = urlsplit(server.url)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(
            (self.target.scheme, self.target.netloc, parts.path, parts.query, "")
        )
        return super().send(request, *args, **kwargs)


def session_for(server: SfServer) -> requests.Session:
    session = requests.Session()
    session.verify = str(server.tls.ca_bundle)
    adapter = SalesforceHostsAdapter(server)
    for prefix in (
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        f"https://{server.state.org.my_domain_host}",
    ):
        session.mount(prefix, adapter)
    return session


@pytest.fixture(scope="session")
def sf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SfServer]:
    server = SfServer(data_dir=tmp_path_factory.mktemp("sfsim"))
    names = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
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
def sf(sf_server: SfServer) -> Iterator[SfServer]:
    defaults = SfConfig()
    for f in fields(SfConfig):
        setattr(sf_server.state.config, f.name, getattr(defaults, f.name))
    sf_server.state.reset()
    load_seed(sf_server.state, read_seed(DEMO_SEED))
    yield sf_server


@pytest.fixture
def sf_session(sf: SfServer) -> Iterator[requests.Session]:
    session = session_for(sf)
    yield session
    session.close()
