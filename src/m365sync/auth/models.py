"""Who may use the web dashboard, and who is using it right now.

- ``LocalCredential``: a member's password for signing in without Microsoft (argon2 hash
  only), with the lockout counters that stop password guessing.
- ``WebSession``: a signed-in browser. The cookie holds a random token; only its SHA-256 is
  stored, so a copy of the database does not hand out sessions. Each session has its own
  CSRF token, which every form of the dashboard must echo.
- ``MicrosoftSignInRequest``: a "Sign in with Microsoft" in progress (MSAL's auth-code flow
  with its PKCE verifier and nonce), bound to the browser that started it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from m365sync.db.base import Base, new_id, utcnow


class LocalCredential(Base):
    __tablename__ = "web_local_credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True, index=True
    )
    # The sign-in name (the member's email, lower-cased), unique across organizations so a
    # sign-in names exactly one member.
    login: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    sign_in_method: Mapped[str] = mapped_column(String(16))  # "password" | "microsoft"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class MicrosoftSignInRequest(Base):
    __tablename__ = "web_microsoft_sign_in_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(100), unique=True)
    browser_binding_hash: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    authority: Mapped[str] = mapped_column(String(500))
    flow: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
