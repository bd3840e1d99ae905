"""Recording admin actions. ``detail`` must never hold a secret: callers pass names, ids
and which fields changed, not values of secrets (the secrets test scans this table too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit.models import AuditEvent
from m365sync.audit.repository import AuditRepository


def record(
    session: Session,
    organization_id: str,
    actor: str,
    action: str,
    target: str = "",
    *,
    at: datetime | None = None,
    **detail: Any,
) -> AuditEvent:
    """``at``: when it happened, for an action recorded after the fact (default: now)."""
    return AuditRepository(session).add(organization_id, actor, action, target, detail, at=at)


def list_events(session: Session, organization_id: str, limit: int = 100) -> list[AuditEvent]:
    return AuditRepository(session).recent(organization_id, limit)
