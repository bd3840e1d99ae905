"""Signing in and out of the dashboard: passwords with lockout, sessions, CSRF tokens.

What is promised:

- A wrong email and a wrong password look the same to the person signing in (same message,
  same time spent hashing).
- After ``MAX_FAILED_ATTEMPTS`` wrong passwords in a row, a credential is locked for
  ``LOCKOUT``; a correct password during the lockout is refused too.
- A session token lives only in the browser's cookie; the database holds its SHA-256.
  Sessions expire after ``SESSION_IDLE_LIFETIME`` without use. Each has a CSRF token.
- Signing in replaces any session the browser had (no session fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.auth import repository
from m365sync.auth.models import LocalCredential, WebSession
from m365sync.auth.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from m365sync.db.base import utcnow
from m365sync.errors import Conflict, M365SyncError, ValidationFailed
from m365sync.organizations.models import Member, Role

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE_LIFETIME = timedelta(hours=12)
_SESSION_REFRESH_AFTER = timedelta(minutes=5)


class SignInRefused(M365SyncError):
    """Wrong credentials, a locked account, or a Microsoft sign-in we cannot accept."""

    status = 401


@dataclass(frozen=True)
class SignedIn:
    """The member behind a request, as every page sees them."""

    session_id: str
    member_id: str
    organization_id: str
    organization_name: str
    email: str
    name: str
    role: Role
    csrf_token: str
    time_zone: str | None = None  # the zone the member chose; None: their browser's

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True)
class NewSession:
    token: str  # goes into the cookie, nowhere else
    signed_in: SignedIn


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_login(email: str) -> str:
    return email.strip().lower()


def set_password(
    db: Session, member: Member, password: str, *, actor: str | None = None
) -> LocalCredential:
    """Give a member a local password (or change it). Ends the member's other sessions.
    With ``actor`` (an admin setting it for the member), the change is audited."""
    problem = password_problem(password)
    if problem:
        raise ValidationFailed("This password is too weak.", fix=problem)
    login = normalise_login(member.email)
    existing = repository.credential_by_login(db, login)
    if existing is not None and existing.member_id != member.id:
        raise Conflict(
            f"{member.email} already signs in to another organization.",
            fix="Use 'Sign in with Microsoft' for this member, or a different email address.",
        )
    credential = existing or repository.credential_for_member(db, member.id)
    if credential is None:
        credential = LocalCredential(member_id=member.id, login=login, password_hash="")
        db.add(credential)
    credential.login = login
    credential.password_hash = hash_password(password)
    credential.failed_attempts = 0
    credential.locked_until = None
    credential.password_changed_at = utcnow()
    repository.delete_sessions_of_member(db, member.id)
    if actor is not None:
        audit.record(db, member.organization_id, actor, "member.password_set", member.email)
    return credential


def sign_in_with_password(db: Session, email: str, password: str) -> NewSession:
    now = utcnow()
    credential = repository.credential_by_login(db, normalise_login(email))
    if credential is not None and credential.locked_until and credential.locked_until > now:
        raise SignInRefused(
            "Too many failed sign-ins: this account is locked for now.",
            fix=f"Try again after {credential.locked_until:%H:%M} UTC, use 'Sign in with "
            "Microsoft', or ask an admin of your organization to reset your password.",
        )
    if not verify_password(credential.password_hash if credential else None, password):
        if credential is not None:
            credential.failed_attempts += 1
            if credential.failed_attempts >= MAX_FAILED_ATTEMPTS:
                credential.failed_attempts = 0
                credential.locked_until = now + LOCKOUT
        raise SignInRefused(
            "The email or password is not right.",
            fix="Check both and try again; after 5 failed attempts the account is locked "
            "for 15 minutes.",
        )
    assert credential is not None
    credential.failed_attempts = 0
    credential.locked_until = None
    credential.last_sign_in_at = now
    if needs_rehash(credential.password_hash):
        credential.password_hash = hash_password(password)
    member = repository.member(db, credential.member_id)
    if member is None:  # pragma: no cover - the credential cascades with its member
        raise SignInRefused("This account no longer exists.", fix="Ask an admin to add you again.")
    return start_session(db, member, sign_in_method="password")


def start_session(db: Session, member: Member, *, sign_in_method: str) -> NewSession:
    now = utcnow()
    repository.delete_expired_sessions(db, now)
    token = secrets.token_urlsafe(32)
    session = WebSession(
        token_hash=_token_hash(token),
        organization_id=member.organization_id,
        member_id=member.id,
        csrf_token=secrets.token_urlsafe(32),
        sign_in_method=sign_in_method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_IDLE_LIFETIME,
    )
    db.add(session)
    db.flush()
    return NewSession(token=token, signed_in=_signed_in(db, session, member))


def _signed_in(db: Session, session: WebSession, member: Member) -> SignedIn:
    organization = repository.organization(db, member.organization_id)
    return SignedIn(
        session_id=session.id,
        member_id=member.id,
        organization_id=member.organization_id,
        organization_name=organization.name if organization else "",
        email=member.email,
        name=member.name or member.email,
        role=Role(member.role),
        csrf_token=session.csrf_token,
        time_zone=member.time_zone,
    )


def resolve_session(db: Session, token: str | None) -> SignedIn | None:
    """The member a session cookie belongs to, or None (no cookie, unknown, expired)."""
    if not token:
        return None
    session = repository.session_by_token_hash(db, _token_hash(token))
    now = utcnow()
    if session is None or session.expires_at <= now:
        return None
    member = repository.member(db, session.member_id)
    if member is None or member.organization_id != session.organization_id:
        return None
    if now - session.last_seen_at > _SESSION_REFRESH_AFTER:
        session.last_seen_at = now
        session.expires_at = now + SESSION_IDLE_LIFETIME
    return _signed_in(db, session, member)


def end_session(db: Session, token: str | None) -> None:
    if token:
        repository.delete_session(db, _token_hash(token))


def csrf_token_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def is_locked(credential: LocalCredential, now: datetime | None = None) -> bool:
    return bool(credential.locked_until and credential.locked_until > (now or utcnow()))
