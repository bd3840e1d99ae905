"""Organizations, their members, domains to sync and members' API tokens.

Every row below ``Organization`` carries ``organization_id``; repositories always filter on
it, which is what keeps organizations isolated from one another.

A domain name may be *claimed* by several organizations, but *verified* by one at most
(``uq_domains_verified_name``, a unique index over verified rows only): only a verified
domain routes "Sign in with Microsoft" and has its members' mailboxes synced.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from m365sync.db.base import Base, enum_type, new_id, utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"
    USER = "user"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    domains: Mapped[list[Domain]] = relationship(
        back_populates="organization", cascade="all, delete-orphan", order_by="Domain.name"
    )


class DomainProof(enum.StrEnum):
    """How an organization proved that a domain is its own."""

    # An admin consented to the organization's service account in the tenant Microsoft
    # Entra ID resolves the domain to (the app-only token's tenant is that tenant).
    SERVICE_ACCOUNT = "service_account"
    # An admin of the organization, with an address in the domain, signed in to Microsoft
    # with an account of the tenant Entra resolves the domain to.
    MICROSOFT_SIGN_IN = "microsoft_sign_in"
    # The DNS TXT record this product handed out was found on the domain.
    DNS_TXT = "dns_txt"
    # The server's operator vouched for it on the command line.
    OPERATOR = "operator"


VERIFIED = text("verified_at IS NOT NULL")


def new_verification_token() -> str:
    """Unguessable, and plain enough to paste into any DNS provider's TXT field."""
    return secrets.token_hex(16)


class Domain(Base):
    """A domain to sync. Only members whose address is in a *verified* one are synced, and a
    service account's tenant is discovered from them.

    ``tenant_id`` is the Microsoft 365 tenant the domain is verified in (None until Entra ID
    has vouched for it, e.g. a domain verified by DNS for Exchange on-premises);
    ``verification_token`` is the value of the DNS TXT record that proves the domain.
    """

    __tablename__ = "domains"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index(
            "uq_domains_verified_name",
            "name",
            unique=True,
            sqlite_where=VERIFIED,
            postgresql_where=VERIFIED,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(253))
    tenant_id: Mapped[str | None] = mapped_column(String(36), default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    verification_method: Mapped[DomainProof | None] = mapped_column(
        enum_type(DomainProof),
        default=None,
    )
    verification_token: Mapped[str] = mapped_column(String(64), default=new_verification_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="domains")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class Member(Base):
    """A person of the organization: whose mailbox is synced, and who may administer."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(
        enum_type(Role, length=16),
        default=Role.USER,
    )
    crm_user_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # The zone the member chose to read times in (an IANA name); None: their browser's.
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[-1].lower()


class ApiToken(Base):
    """A bearer token for the JSON API, acting as one admin of one organization.

    Only a SHA-256 of the token is stored; the token itself is shown once, at creation.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    member: Mapped[Member] = relationship()
