"""CRM targets: the interface the sync engine logs into, and the embedded store."""

from __future__ import annotations

from sqlalchemy.orm import Session

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.target import CrmTarget

__all__ = ["CrmTarget", "EmbeddedCrm", "open_crm"]


def open_crm(session: Session, organization_id: str) -> EmbeddedCrm:
    """The organization's CRM target inside ``session`` (the embedded store today)."""
    return EmbeddedCrm(session, organization_id)
