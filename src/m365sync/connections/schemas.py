"""JSON shapes for service accounts, Run Test and user connections.

Secrets come in as ``SecretStr`` (masked in reprs and logs) and never go out: no response
model has a field that could hold one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from m365sync.connections.models import Feature


class ServiceAccountIn(BaseModel):
    """An Office 365 service account as the admin enters it (secret or uploaded certificate)."""

    name: str = "Office 365 service account"
    client_id: str = Field(description="Application (client) ID of the app registration.")
    client_secret: SecretStr | None = Field(
        default=None, description="The secret's Value (not its ID)."
    )
    certificate_pem: SecretStr | None = Field(
        default=None,
        description="PEM holding the private key and the certificate (instead of a secret).",
    )
    tenant_id: str | None = Field(
        default=None, description="Optional: overrides the tenant found from your domains."
    )
    test_mailbox: str = Field(description="A mailbox in your domains to test with.")
    secret_expires_at: datetime | None = None
    partial: bool = Field(default=False, description="Save even though a required check failed.")


class ExchangeServiceAccountIn(BaseModel):
    name: str = "Exchange service account"
    server_url: str = Field(
        default="",
        examples=["https://mail.contoso.com/EWS/Exchange.asmx"],
        description="The EWS address, or an Autodiscover address; Run Test finds the server "
        "by Autodiscover from the test mailbox's domain when it is empty.",
    )
    username: str = Field(description="The impersonation account: user@domain or DOMAIN\\user.")
    password: SecretStr
    test_mailbox: str = Field(
        default="",
        description="A mailbox in your domains to test with (required to save: saving runs "
        "Run Test for Exchange first).",
    )
    partial: bool = Field(
        default=False,
        description="Save even though a required check failed (the failing features stay off).",
    )


class CertificateAccountIn(BaseModel):
    name: str = "Office 365 service account"


class CompleteCertificateIn(BaseModel):
    client_id: str
    test_mailbox: str
    tenant_id: str | None = None
    partial: bool = False


class RetestIn(BaseModel):
    test_mailbox: str | None = None


class ReplaceSecretIn(BaseModel):
    client_secret: SecretStr
    secret_expires_at: datetime | None = None
    partial: bool = False


class CheckOut(BaseModel):
    key: str
    title: str
    outcome: str
    message: str
    fix: str
    required: bool
    code: str | None


class TestReportOut(BaseModel):
    ok: bool
    tenant_id: str | None
    granted_permissions: list[str]
    enabled_features: list[Feature]
    missing_permissions: dict[str, list[str]]
    checks: list[CheckOut]


class ServiceAccountOut(BaseModel):
    id: str
    name: str
    kind: str
    credential_type: str
    client_id: str | None
    tenant_id: str | None
    test_mailbox: str | None
    status: str
    status_detail: str
    status_fix: str
    features: dict[str, Any]
    granted_permissions: list[str]
    secret_expires_at: str | None
    secret_expiry: dict[str, Any]
    certificate_thumbprint: str | None
    certificate_pem: str | None = Field(
        description="The public certificate to upload to the app registration."
    )
    certificate_expires_at: str | None = None
    set_up_by_m365sync: bool = Field(
        default=False,
        description="m365sync registered the app itself (Set up for me) and renews its "
        "certificate before it expires.",
    )
    ews_url: str | None
    username: str | None
    last_tested_at: str | None
    created_at: str | None


class SavedServiceAccountOut(BaseModel):
    service_account: ServiceAccountOut
    test: TestReportOut


class AccessPolicyIn(BaseModel):
    group: str = Field(
        description="Address of the mail-enabled security group.", examples=["crm-sync@contoso.com"]
    )
    admin_upn: str | None = None


class AccessPolicyOut(BaseModel):
    application_access_policy: str
    rbac_for_applications: str
    notes: list[str]


class MailboxReachOut(BaseModel):
    email: str
    reach: str
    message: str
    fix: str


class UserConnectionOut(BaseModel):
    id: str
    member_id: str
    kind: str
    status: str
    status_detail: str
    status_fix: str
    account: str | None
    granted_scopes: list[str]
    features: list[str]
    ews_url: str | None
    migration: str | None
    covered_by_service_account: bool
    connected_at: str | None


class ConnectStartOut(BaseModel):
    authorization_url: str


class ConnectCompleteIn(BaseModel):
    """The query parameters Microsoft redirected back with (code, state, ...)."""

    params: dict[str, str]


class ExchangeConnectionIn(BaseModel):
    server_url: str = Field(
        default="", description="The EWS address; empty to use Autodiscover (Run Test only)."
    )
    username: str = Field(default="", description="Empty: the member's own address.")
    password: SecretStr


class MemberConnectionStatusOut(BaseModel):
    member_id: str
    email: str
    synced_domain: bool
    via_service_account: list[str]
    connection: UserConnectionOut | None
    served_by: dict[str, str] = Field(
        default_factory=dict,
        description="Per synced feature, the protocol its last run went through: graph "
        "(Microsoft Graph) or ews (an on-premises Exchange Server).",
    )


class SetupIn(BaseModel):
    """Set up for me: what the admin chose before signing in with Microsoft."""

    features: list[Feature] = Field(
        default=[Feature.EMAIL, Feature.CALENDAR],
        description="email, calendar and/or scheduling (Task Sync needs user connections).",
    )
    test_mailbox: str = Field(description="A mailbox in your domains to test with.")
    name: str = Field(default="m365sync service account", description="The app's name in Entra.")
