"""Fixtures for the Salesforce package's tests: settings and a client on sfsim's demo org."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from salesforce_world import (
    CONSUMER_KEY,
    DEMO_KEY,
    INTEGRATION_USER,
    CountingSource,
    salesforce_settings,
)

from m365sync.salesforce import JwtBearerFlow, SalesforceClient
from m365sync.settings import Settings
from sfsim import SfServer


@pytest.fixture
def sf_settings(sf: SfServer, tmp_path: Path) -> Settings:
    return salesforce_settings(sf, tmp_path / "data")


@pytest.fixture
def jwt_source(sf_settings: Settings) -> CountingSource:
    return CountingSource(
        JwtBearerFlow(
            sf_settings,
            consumer_key=CONSUMER_KEY,
            username=INTEGRATION_USER,
            signing_key=DEMO_KEY,
        )
    )


@pytest.fixture
def client(sf_settings: Settings, jwt_source: CountingSource) -> Iterator[SalesforceClient]:
    with SalesforceClient(sf_settings, jwt_source) as opened:
        yield opened
