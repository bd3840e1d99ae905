"""What the EWS tests share: the demo tenant's accounts and the exchangelib account
factory's type."""

from __future__ import annotations

from collections.abc import Callable

from exchangelib import Account

from support.demo import DEMO_ADMIN_PASSWORD, DEMO_USER_PASSWORD

TENANT = "contoso.com"
SERVICE_ACCOUNT = "admin@contoso.com"
SERVICE_PASSWORD = DEMO_ADMIN_PASSWORD
USER_PASSWORD = DEMO_USER_PASSWORD

AccountFactory = Callable[..., Account]
"""The ``ews`` fixture: ``ews(address, *, as_service=False, username=None, password=None,
auth_type=None, **configuration)``."""
