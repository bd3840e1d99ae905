"""Service accounts and user connections, with their secrets sealed (``m365sync.crypto``).

Columns ending in ``_sealed`` hold AES-GCM ciphertext bound to (table, column, row id);
they are marked ``info={"sealed": True}`` so key rotation finds them. Nothing else here is
secret: a certificate's public part and thumbprint are not.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from m365sync.db.base import Base, enum_type, new_id, utcnow


def sealed_column() -> Mapped[bytes | None]:
    return mapped_column(LargeBinary, default=None, info={"sealed": True})


class ConnectionKind(enum.StrEnum):
    OFFICE365 = "office365"  # Microsoft Graph
    EXCHANGE = "exchange"  # EWS, on-premises Exchange


class CredentialType(enum.StrEnum):
    SECRET = "secret"
    CERTIFICATE = "certificate"
    PASSWORD = "password"  # EWS


class Feature(enum.StrEnum):
    EMAIL = "email"
    CALENDAR = "calendar"
    SCHEDULING = "scheduling"
    TASKS = "tasks"


class ConnectionStatus(enum.StrEnum):
    """What people see. ``detail``/``fix`` columns say why and what to do."""

    ACTIVE = "active"
    PARTIAL = "partial"  # saved on purpose with some features off
    NEEDS_NEW_SECRET = "needs_new_secret"
    NEEDS_CONSENT = "needs_consent"
    INVALID_CREDENTIALS = "invalid_credentials"
    NEEDS_RECONNECT = "needs_reconnect"
    ERROR = "error"
    PENDING = "pending"


class ServiceAccount(Base):
    __tablename__ = "service_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ConnectionKind] = mapped_column(enum_type(ConnectionKind))
    credential_type: Mapped[CredentialType] = mapped_column(enum_type(CredentialType))
    # Office 365 (Graph, app-only).
    client_id: Mapped[str | None] = mapped_column(String(36), default=None)
    tenant_id: Mapped[str | None] = mapped_column(String(36), default=None)
    secret_sealed: Mapped[bytes | None] = sealed_column()
    secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    certificate_pem: Mapped[str | None] = mapped_column(Text, default=None)
    certificate_thumbprint: Mapped[str | None] = mapped_column(String(64), default=None)
    private_key_sealed: Mapped[bytes | None] = sealed_column()
    token_cache_sealed: Mapped[bytes | None] = sealed_column()
    # The app registration, when m365sync registered it itself (Set up for me): its object id
    # and the keyId of the certificate in use, which renewing the certificate needs.
    application_object_id: Mapped[str | None] = mapped_column(String(36), default=None)
    certificate_key_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # Exchange (EWS, impersonation).
    ews_url: Mapped[str | None] = mapped_column(String(500), default=None)
    username: Mapped[str | None] = mapped_column(String(320), default=None)
    password_sealed: Mapped[bytes | None] = sealed_column()
    # Result of the last Run Test / last use.
    test_mailbox: Mapped[str | None] = mapped_column(String(320), default=None)
    status: Mapped[ConnectionStatus] = mapped_column(
        enum_type(ConnectionStatus), default=ConnectionStatus.PENDING
    )
    status_detail: Mapped[str] = mapped_column(Text, default="")
    status_fix: Mapped[str] = mapped_column(Text, default="")
    granted_permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled_features: Mapped[list[str]] = mapped_column(JSON, default=list)
    missing_permissions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_tested_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserConnection(Base):
    """A member's own mailbox connection (Office 365 delegated, or legacy Exchange)."""

    __tablename__ = "user_connections"
    __table_args__ = (UniqueConstraint("member_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[ConnectionKind] = mapped_column(enum_type(ConnectionKind))
    status: Mapped[ConnectionStatus] = mapped_column(
        enum_type(ConnectionStatus), default=ConnectionStatus.PENDING
    )
    status_detail: Mapped[str] = mapped_column(Text, default="")
    status_fix: Mapped[str] = mapped_column(Text, default="")
    status_notified_at: Mapped[datetime | None] = mapped_column(default=None)
    # Office 365.
    tenant_id: Mapped[str | None] = mapped_column(String(36), default=None)
    account_username: Mapped[str | None] = mapped_column(String(320), default=None)
    home_account_id: Mapped[str | None] = mapped_column(String(200), default=None)
    granted_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_cache_sealed: Mapped[bytes | None] = sealed_column()
    # Exchange (EWS).
    ews_url: Mapped[str | None] = mapped_column(String(500), default=None)
    username: Mapped[str | None] = mapped_column(String(320), default=None)
    password_sealed: Mapped[bytes | None] = sealed_column()
    connected_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuthorizationRequest(Base):
    """An Office 365 sign-in in progress: MSAL's auth-code flow (PKCE verifier, nonce), keyed
    by its ``state``, sealed, and consumed by the callback."""

    __tablename__ = "authorization_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(100), unique=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    flow_sealed: Mapped[bytes | None] = sealed_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
