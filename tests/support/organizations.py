"""Organizations as tests hold them across sessions."""

from __future__ import annotations

from sqlalchemy.orm import Session

from m365sync.organizations import service as orgs
from m365sync.organizations.models import Organization

__all__ = ["fresh"]


def fresh(session: Session, organization: Organization) -> Organization:
    """``organization`` read again in ``session``: a factory's object belongs to a session
    that has closed, so what it holds can't be loaded through it."""
    return orgs.get_organization(session, organization.id)
