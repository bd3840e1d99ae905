"""CRM targets: the interface the sync engine logs into, and the embedded store.

The embedded store is the ledger the sync engine commits into, whether or not the
organization's CRM is Salesforce: with a Salesforce connection, the store also queues each
change for the Salesforce writer (``crm.salesforce_writer.drain_salesforce``) and matches
people against the mirror of Salesforce's contacts and leads (``crm.salesforce_mirror``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.salesforce_repository import writes_to_salesforce
from m365sync.crm.target import CrmTarget

__all__ = ["CrmTarget", "EmbeddedCrm", "open_crm"]


def open_crm(session: Session, organization_id: str) -> EmbeddedCrm:
    """The organization's CRM target inside ``session``: the embedded store, queueing its
    changes for Salesforce when the organization writes to Salesforce."""
    return EmbeddedCrm(
        session, organization_id, queue_changes=writes_to_salesforce(session, organization_id)
    )
