"""Audit log queries (only this module reads or writes ``audit_events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from m365sync.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        organization_id: str,
        actor: str,
        action: str,
        target: str,
        detail: dict[str, Any],
        *,
        at: datetime | None = None,
    ) -> AuditEvent:
        event = AuditEvent(
            organization_id=organization_id,
            actor=actor,
            action=action,
            target=target,
            detail=detail,
        )
        if at is not None:
            event.created_at = at
        self.session.add(event)
        self.session.flush()
        return event

    def recent(self, organization_id: str, limit: int = 100) -> list[AuditEvent]:
        query = (
            select(AuditEvent)
            .where(AuditEvent.organization_id == organization_id)
            .order_by(AuditEvent.created_at.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query))
