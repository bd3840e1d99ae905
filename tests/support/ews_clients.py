"""What the EWS tests share: the demo tenant's accounts and the exchangelib account
factory's type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchangelib import Account

from m365sim.server import SimServer
from support.demo import DEMO_ADMIN_PASSWORD, DEMO_USER_PASSWORD
from support.sim_tokens import sim_client

TENANT = "contoso.com"
SERVICE_ACCOUNT = "admin@contoso.com"
SERVICE_PASSWORD = DEMO_ADMIN_PASSWORD
USER_PASSWORD = DEMO_USER_PASSWORD

AccountFactory = Callable[..., Account]
"""The ``ews`` fixture: ``ews(address, *, as_service=False, username=None, password=None,
auth_type=None, **configuration)``."""


def turn_on_exchange(sim: SimServer, **exchange: Any) -> str:
    """Contoso with an on-premises Exchange Server 2019 holding every mailbox, the admin
    account holding ApplicationImpersonation for the whole organization (``exchange``
    overrides any setting of ``PATCH /_sim/tenants/{tenant}/exchange``); returns the EWS URL."""
    settings: dict[str, Any] = {
        "flavour": "onpremises",
        "version": "Exchange2019",
        "roleAssignments": [{"user": SERVICE_ACCOUNT}],
        **exchange,
    }
    with sim_client(sim) as control:
        response = control.patch(f"/_sim/tenants/{TENANT}/exchange", json=settings)
    assert response.status_code == 200, response.text
    return f"{sim.url}/EWS/Exchange.asmx"


def add_fault(sim: SimServer, **fault: Any) -> None:
    """One rule of m365sim's fault injector (``POST /_sim/faults``)."""
    with sim_client(sim) as control:
        response = control.post("/_sim/faults", json=fault)
    assert response.status_code in (200, 201), response.text
