"""Queries for credentials, sessions and Microsoft sign-in requests (nothing else queries
these tables; nothing here commits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from m365sync.auth.models import LocalCredential, MicrosoftSignInRequest, WebSession
from m365sync.organizations.models import Domain, Member, Organization


def credential_by_login(db: Session, login: str) -> LocalCredential | None:
    return db.scalar(select(LocalCredential).where(LocalCredential.login == login))


def credential_for_member(db: Session, member_id: str) -> LocalCredential | None:
    return db.scalar(select(LocalCredential).where(LocalCredential.member_id == member_id))


def member(db: Session, member_id: str) -> Member | None:
    return db.get(Member, member_id)


def organization(db: Session, organization_id: str) -> Organization | None:
    return db.get(Organization, organization_id)


def session_by_token_hash(db: Session, token_hash: str) -> WebSession | None:
    return db.scalar(select(WebSession).where(WebSession.token_hash == token_hash))


def delete_session(db: Session, token_hash: str) -> None:
    db.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


def delete_sessions_of_member(db: Session, member_id: str) -> None:
    db.execute(delete(WebSession).where(WebSession.member_id == member_id))


def delete_expired_sessions(db: Session, now: datetime) -> None:
    db.execute(delete(WebSession).where(WebSession.expires_at < now))


def organization_with_verified_domain(
    db: Session, domain: str
) -> tuple[Organization, Domain] | None:
    """The organization that verified ``domain`` (one at most: a unique index holds it) and
    its row; unverified claims never route a sign-in."""
    row = db.execute(
        select(Organization, Domain)
        .join(Domain, Domain.organization_id == Organization.id)
        .where(Domain.name == domain.lower(), Domain.verified_at.is_not(None))
    ).first()
    return None if row is None else (row[0], row[1])


def member_by_email(db: Session, organization_id: str, email: str) -> Member | None:
    return db.scalar(
        select(Member).where(
            Member.organization_id == organization_id, func.lower(Member.email) == email.lower()
        )
    )


def pop_microsoft_sign_in_request(db: Session, state: str) -> MicrosoftSignInRequest | None:
    request = db.scalar(select(MicrosoftSignInRequest).where(MicrosoftSignInRequest.state == state))
    if request is not None:
        db.delete(request)
    return request


def delete_stale_microsoft_sign_in_requests(db: Session, older_than: datetime) -> None:
    db.execute(delete(MicrosoftSignInRequest).where(MicrosoftSignInRequest.created_at < older_than))
