"""Fixtures for m365sim's Exchange Server: the demo tenant turned into an on-premises
organization, and unmodified exchangelib accounts against it.

exchangelib trusts m365sim's CA through ``REQUESTS_CA_BUNDLE``, which the ``sim_server``
fixture points at the simulator's bundle for the session (requests reads it for every
request; no adapter or ``verify`` override is needed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration, Credentials
from exchangelib.protocol import close_connections

from m365sim.server import SimServer
from support.ews_clients import (
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    TENANT,
    USER_PASSWORD,
    AccountFactory,
)


@pytest.fixture
def onprem(sim: SimServer, control: httpx.Client) -> SimServer:
    """Contoso with an Exchange Server 2019 holding every mailbox, and the admin account
    holding ApplicationImpersonation for the whole organization."""
    response = control.patch(
        f"/_sim/tenants/{TENANT}/exchange",
        json={
            "flavour": "onpremises",
            "version": "Exchange2019",
            "roleAssignments": [{"user": SERVICE_ACCOUNT}],
        },
    )
    assert response.status_code == 200, response.text
    return sim


@pytest.fixture
def ews_url(onprem: SimServer) -> str:
    return f"{onprem.url}/EWS/Exchange.asmx"


@pytest.fixture
def ews(ews_url: str) -> Iterator[AccountFactory]:
    """``ews("diego@contoso.com")`` → the user's own mailbox with their password (NTLM);
    ``ews("diego@contoso.com", as_service=True)`` → the service account impersonating them.
    Keyword ``auth_type`` (exchangelib's NTLM/BASIC), ``username``, ``password`` and
    ``retry_policy`` override the defaults."""

    def make(
        address: str,
        *,
        as_service: bool = False,
        username: str | None = None,
        password: str | None = None,
        auth_type: str | None = None,
        **config: Any,
    ) -> Account:
        if as_service:
            username = username or SERVICE_ACCOUNT
            password = password or SERVICE_PASSWORD
        credentials = Credentials(username or address, password or USER_PASSWORD)
        configuration = Configuration(
            service_endpoint=ews_url, credentials=credentials, auth_type=auth_type, **config
        )
        return Account(
            address,
            config=configuration,
            autodiscover=False,
            access_type=IMPERSONATION if as_service else DELEGATE,
        )

    yield make
    close_connections()  # exchangelib caches protocols (and their sessions) per endpoint
