"""What the EWS tests share: the demo tenant's accounts and the exchangelib account factory's type.

Import from here (``from ews_clients import ...``), not from ``conftest``.
"""

from __future__ import annotations

from collections.abc import Callable

from exchangelib import Account

TENANT = "contoso.com"
SERVICE_ACCOUNT = "admin@contoso.com"
SERVICE_PASSWORD = "Demo-Admin-1!"
USER_PASSWORD = "Demo-User-1!"

AccountFactory = Callable[..., Account]
"""The ``ews`` fixture: ``ews(address, *, as_service=False, username=None, password=None,
auth_type=None, **configuration)``."""
