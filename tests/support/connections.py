"""Connecting the demo tenant as an admin does, for tests that need a saved connection."""

from __future__ import annotations

from typing import Any

from m365sync.connections import service_accounts
from m365sync.connections.models import ServiceAccount
from m365sync.connections.run_test import ServiceAccountDraft, TestReport
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.microsoft.auth import ClientCertificate, ClientSecret
from m365sync.organizations.models import Organization
from support.demo import SERVICE_APP_ID, SERVICE_SECRET
from support.organizations import fresh

__all__ = ["add_service_account"]


async def add_service_account(
    db: Database,
    runtime: ConnectionRuntime,
    organization: Organization,
    *,
    secret: str | None = SERVICE_SECRET,
    certificate: ClientCertificate | None = None,
    partial: bool = False,
    **draft: Any,
) -> tuple[ServiceAccount, TestReport]:
    """The demo tenant's service account saved for ``organization`` through Run Test, with
    its secret unless ``certificate`` is given; ``draft`` overrides the form's other fields
    (name, client id, test mailbox, ...)."""
    values: dict[str, Any] = {
        "name": "Contoso SA",
        "client_id": SERVICE_APP_ID,
        "test_mailbox": "adele@contoso.com",
    }
    values.update(draft)
    credential = certificate or (ClientSecret(secret) if secret is not None else None)
    with db.session() as session:
        return await service_accounts.add_service_account(
            session,
            runtime,
            fresh(session, organization),
            ServiceAccountDraft(credential=credential, **values),
            partial=partial,
        )
