"""JSON shapes of organizations, domains, members and API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from m365sync.organizations.models import DomainProof, Role


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    slug: str
    created_at: datetime


class DomainIn(BaseModel):
    name: str = Field(examples=["contoso.com"])


class DnsRecordOut(BaseModel):
    """Publish a TXT record with ``value`` on ``host`` to verify the domain by DNS."""

    host: str
    value: str


class DomainOut(BaseModel):
    name: str
    verified: bool = Field(
        description="Only a verified domain routes Sign in with Microsoft and has its "
        "mailboxes synced."
    )
    verified_at: datetime | None
    verification_method: DomainProof | None
    tenant_id: str | None = Field(description="The Microsoft 365 tenant it is verified in.")
    dns_txt_record: DnsRecordOut
    created_at: datetime
    warning: str | None = Field(
        default=None,
        description="When adding: why this domain looks like none of the organization's own "
        "(its Microsoft 365 tenant is not the service accounts' tenant); it was added anyway.",
    )
    warning_fix: str | None = None


class MemberIn(BaseModel):
    email: str = Field(examples=["adele@contoso.com"])
    name: str = ""
    role: Role = Role.USER
    crm_user_id: str | None = None


class MemberPatch(BaseModel):
    name: str | None = None
    role: Role | None = None
    crm_user_id: str | None = None


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    name: str
    role: Role
    crm_user_id: str | None
    created_at: datetime


class ImportOut(BaseModel):
    created: list[str]
    updated: list[str]
    errors: list[str]


class ApiTokenOut(BaseModel):
    """An API token as listed: never the token itself (only its first characters)."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    admin: str = Field(description="Email of the admin the token acts as.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    actor: str
    action: str
    target: str
    detail: dict[str, object]
    created_at: datetime
