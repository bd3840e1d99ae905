"""Fixtures for the Salesforce package's tests: settings and a client on sfsim's demo org."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m365sync.salesforce import JwtBearerFlow, SalesforceClient
from m365sync.settings import Settings
from sfsim import SfServer
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_INTEGRATION_USER
from support.salesforce_world import DEMO_KEY, CountingSource, salesforce_settings


@pytest.fixture
def sf_settings(sf: SfServer, tmp_path: Path) -> Settings:
    return salesforce_settings(sf, tmp_path / "data")


@pytest.fixture
def jwt_source(sf_settings: Settings) -> CountingSource:
    return CountingSource(
        JwtBearerFlow(
            sf_settings,
            consumer_key=SALESFORCE_CONSUMER_KEY,
            username=SALESFORCE_INTEGRATION_USER,
            signing_key=DEMO_KEY,
        )
    )


@pytest.fixture
def client(sf_settings: Settings, jwt_source: CountingSource) -> Iterator[SalesforceClient]:
    with SalesforceClient(sf_settings, jwt_source) as opened:
        yield opened
