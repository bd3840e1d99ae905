"""The demo tenant's service account, for tests that need an organization connected: saved
through Run Test as an admin does, or stored as a passed Run Test leaves it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from m365sync.connections import service_accounts
from m365sync.connections.models import (
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    ServiceAccount,
)
from m365sync.connections.run_test import ServiceAccountDraft, TestReport
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.microsoft.auth import ClientCertificate, ClientSecret
from m365sync.organizations.models import Organization
from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID, SERVICE_SECRET
from support.organizations import fresh

__all__ = ["MAIL_AND_CALENDARS", "add_service_account", "store_service_account"]

MAIL_AND_CALENDARS = ("Mail.Read", "Mail.ReadWrite", "Calendars.Read", "Calendars.ReadWrite")


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


def store_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization_id: str,
    *,
    enabled_features: Sequence[str] = ("email", "calendar", "scheduling"),
    granted_permissions: Sequence[str] = MAIL_AND_CALENDARS,
    status: ConnectionStatus = ConnectionStatus.ACTIVE,
    missing_permissions: dict[str, list[str]] | None = None,
) -> ServiceAccount:
    """The demo tenant's consented app stored in ``session`` as the organization's service
    account (its secret sealed), as a passed Run Test leaves it, without running one."""
    account = ServiceAccount(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        name="Contoso service account",
        kind=ConnectionKind.OFFICE365,
        credential_type=CredentialType.SECRET,
        client_id=SERVICE_APP_ID,
        tenant_id=DEMO_TENANT_ID,
        status=status,
        enabled_features=list(enabled_features),
        granted_permissions=list(granted_permissions),
        missing_permissions=missing_permissions or {},
    )
    runtime.seal(account, "secret_sealed", SERVICE_SECRET)
    session.add(account)
    return account
