"""What the Salesforce services hand to doors and workers: Run Test's report, the members ↔
Salesforce users mapping, what a drain and a mirror run did, and the connection's overview.

Plain values, detached from the database session; ``as_json`` gives their JSON shape.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from m365sync.crm.models import EmailTarget, SalesforceAuthKind, SalesforceStatus, WriteState

__all__ = [
    "BacklogItem",
    "CheckOutcome",
    "DrainResult",
    "DrainStatus",
    "MemberUser",
    "MirrorResult",
    "SalesforceCheck",
    "SalesforceClientCredentialsIn",
    "SalesforceConnectCompleteIn",
    "SalesforceConnectStartIn",
    "SalesforceJwtIn",
    "SalesforceLinkIn",
    "SalesforceOverview",
    "SalesforceRetryIn",
    "SalesforceShareIn",
    "SalesforceTestReport",
]


class CheckOutcome(enum.StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    """Works, with a limitation the admin should know (Enhanced Email off, little API left)."""
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not checked: an earlier check failed (no sign-in, no API access)."""


@dataclass(frozen=True)
class SalesforceCheck:
    """One line of Run Test for Salesforce: what was checked, how it went, and the fix."""

    name: str
    title: str
    outcome: CheckOutcome
    message: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "title": self.title,
            "outcome": self.outcome.value,
            "message": self.message,
            "fix": self.fix,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SalesforceCheck:
        return cls(
            name=str(data.get("name", "")),
            title=str(data.get("title", "")),
            outcome=CheckOutcome(str(data.get("outcome", CheckOutcome.SKIPPED.value))),
            message=str(data.get("message", "")),
            fix=str(data.get("fix", "")),
        )


_SEVERITY = {
    CheckOutcome.FAILED: 0,
    CheckOutcome.WARNING: 1,
    CheckOutcome.PASSED: 2,
    CheckOutcome.SKIPPED: 3,
}


@dataclass
class SalesforceTestReport:
    checks: list[SalesforceCheck]
    email_target: EmailTarget | None = None
    username: str = ""
    """The user m365sync signs in as."""
    api_used: int | None = None
    api_limit: int | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed (warnings allowed)."""
        return all(c.outcome != CheckOutcome.FAILED for c in self.checks)

    @property
    def signed_in(self) -> bool:
        return any(c.name == "sign_in" and c.outcome == CheckOutcome.PASSED for c in self.checks)

    def check(self, name: str) -> SalesforceCheck | None:
        return next((c for c in self.checks if c.name == name), None)

    def failures(self) -> list[SalesforceCheck]:
        return [c for c in self.checks if c.outcome == CheckOutcome.FAILED]

    def worst_first(self) -> list[SalesforceCheck]:
        """The checks, failures first, then warnings, passed and skipped (each in order)."""
        return sorted(self.checks, key=lambda c: _SEVERITY[c.outcome])

    @property
    def outcome(self) -> CheckOutcome:
        """The worst outcome of any check."""
        return min(
            (c.outcome for c in self.checks), key=_SEVERITY.__getitem__, default=CheckOutcome.PASSED
        )

    @property
    def verdict(self) -> str:
        """The report in one line, as a person reads it first."""
        failures = self.failures()
        if not self.signed_in:
            first = failures[0].message if failures else "Salesforce refused to sign in."
            return f"Not connected: {first}"
        if failures:
            return (
                f"Connected, but {len(failures)} check(s) failed: Salesforce refuses some of "
                "what m365sync writes until they are fixed (below)."
            )
        warnings = [c for c in self.checks if c.outcome == CheckOutcome.WARNING]
        if warnings:
            return f"Connected and working, with {len(warnings)} warning(s) to read below."
        return "Connected and working: every check passed."

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "email_target": self.email_target.value if self.email_target else None,
            "username": self.username,
            "api_used": self.api_used,
            "api_limit": self.api_limit,
            "checks": [c.as_json() for c in self.checks],
        }


@dataclass(frozen=True)
class MemberUser:
    """A member and the Salesforce user their activities are owned by and related to."""

    member_id: str
    email: str
    name: str
    salesforce_user_id: str | None
    salesforce_username: str = ""
    salesforce_name: str = ""
    matched_by: str | None = None
    """``email`` (found by address) or ``admin`` (chosen); None: no user."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class DrainStatus(enum.StrEnum):
    DRAINED = "drained"
    """Every due record was tried (some may wait for a retry or a person)."""
    PAUSED = "paused"
    """The API limit (or m365sync's share of it) is reached; ``resumes_at`` says when."""
    NOT_CONNECTED = "not_connected"
    NEEDS_RECONNECT = "needs_reconnect"
    BUSY = "busy"
    """Another worker is draining this organization right now."""


@dataclass
class DrainResult:
    """What one ``drain_salesforce`` did."""

    status: DrainStatus = DrainStatus.DRAINED
    written: int = 0
    """Records created or updated in Salesforce."""
    related: int = 0
    """People related (EmailMessageRelation, EventRelation) to them."""
    deleted: int = 0
    synced: int = 0
    """Activities Salesforce now holds as the local store does."""
    retrying: int = 0
    parked: int = 0
    unmatched: int = 0
    api_calls: int = 0
    message: str = ""
    fix: str = ""
    resumes_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["resumes_at"] = self.resumes_at.isoformat() if self.resumes_at else None
        return data


@dataclass
class MirrorResult:
    """What one ``refresh_salesforce_people`` did, per Salesforce object."""

    loaded: dict[str, int] = field(default_factory=dict)
    """Records read by a full load (first run, or a cursor too old to poll from)."""
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PullResult:
    """What one ``pull_salesforce_changes`` brought from Salesforce, per object (Event,
    Task): records created, changed and deleted there that now go to Outlook or To Do."""

    created: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    echoes: int = 0
    """Changes that were m365sync's own writes (not applied again)."""
    kept_local: int = 0
    """Salesforce changes older than a local change not yet written there (the local one
    wins)."""
    skipped: int = 0
    """Records m365sync can't place in a calendar (an Event without a start or an end)."""
    paused: bool = False
    """Stopped at the org's API limit or m365sync's share of it; the next poll goes on."""
    api_calls: int = 0
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SalesforceOverview:
    """The connection as an admin sees it: status, who m365sync is there, API usage, the
    writer's backlog and pause, members' users, and the last Run Test."""

    connected: bool
    status: SalesforceStatus | None = None
    detail: str = ""
    fix: str = ""
    auth_kind: SalesforceAuthKind | None = None
    login_url: str = ""
    instance_url: str = ""
    salesforce_org_id: str = ""
    integration_username: str = ""
    email_target: EmailTarget | None = None
    api_used: int | None = None
    api_limit: int | None = None
    api_share: float | None = None
    create_leads: bool = False
    """Meetings' new people become Salesforce Leads (a booked meeting's unknown invitee)."""
    paused_until: datetime | None = None
    pause_reason: str = ""
    records: dict[str, int] = field(default_factory=dict)
    members: list[MemberUser] = field(default_factory=list)
    last_test: list[SalesforceCheck] = field(default_factory=list)
    last_tested_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "status": self.status.value if self.status else None,
            "detail": self.detail,
            "fix": self.fix,
            "auth_kind": self.auth_kind.value if self.auth_kind else None,
            "login_url": self.login_url,
            "instance_url": self.instance_url,
            "salesforce_org_id": self.salesforce_org_id,
            "integration_username": self.integration_username,
            "email_target": self.email_target.value if self.email_target else None,
            "api_used": self.api_used,
            "api_limit": self.api_limit,
            "api_share": self.api_share,
            "create_leads": self.create_leads,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "pause_reason": self.pause_reason,
            "records": {WriteState(k).value: v for k, v in self.records.items()},
            "members": [m.as_json() for m in self.members],
            "last_test": [c.as_json() for c in self.last_test],
            "last_tested_at": self.last_tested_at.isoformat() if self.last_tested_at else None,
        }


@dataclass(frozen=True)
class BacklogItem:
    """A record the writer could not write (yet): parked for a person, or waiting for a
    retry after a failure. Says which activity, whose, why and what fixes it."""

    activity_id: str
    kind: str
    subject: str
    occurred_at: datetime | None
    member_email: str
    """The member the activity belongs to (its owner, else a member holding it)."""
    state: str
    """``parked`` (needs a person) or ``pending`` (retried later)."""
    reason: str
    fix: str
    attempts: int
    next_attempt_at: datetime | None
    sobject: str
    salesforce_id: str | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("occurred_at", "next_attempt_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data


@dataclass
class UnresolvedItem:
    """An email or meeting in a member's unresolved queue, with the external addresses
    nobody has decided about."""

    activity_id: str
    kind: str
    subject: str
    occurred_at: datetime | None
    addresses: list[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RecordChoice:
    """A Salesforce record an address can be related to (found in the mirror)."""

    sobject: str
    salesforce_id: str
    label: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AddressDecision:
    """What was decided for an address, and how many waiting items went back to the
    writer because of it."""

    address: str
    choice: str
    sobject: str
    salesforce_id: str | None
    label: str
    requeued: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class RelateIn(BaseModel):
    """Relate an address to a Salesforce record (its id, as a search returned it)."""

    salesforce_id: str = Field(min_length=15, max_length=18, examples=["003000000000001AAA"])
    member_id: str | None = Field(default=None, description="Whose queue; default: yours.")


class LeadIn(BaseModel):
    """Create a Salesforce Lead for an address."""

    name: str = Field(default="", max_length=200, examples=["Jo Prospect"])
    company: str = Field(default="", max_length=255, examples=["Prospect Ltd"])
    member_id: str | None = Field(default=None, description="Whose queue; default: yours.")


class DismissIn(BaseModel):
    member_id: str | None = Field(default=None, description="Whose queue; default: yours.")


# -- what the JSON API takes (secrets as ``SecretStr``: masked in reprs, never sent back) ----

LOGIN_URL_HELP = (
    "https://login.salesforce.com (production), https://test.salesforce.com (sandbox) or the "
    "org's My Domain https://<name>.my.salesforce.com; the server's default if left out."
)


class SalesforceJwtIn(BaseModel):
    """Server to server: the JWT bearer flow as the integration user."""

    consumer_key: str = Field(description="The connected app's Consumer Key.")
    username: str = Field(description="The integration user's Salesforce username.")
    private_key_pem: SecretStr = Field(
        description="PEM private key whose certificate is uploaded to the connected app."
    )
    certificate_pem: str | None = Field(default=None, description="That certificate (PEM).")
    login_url: str | None = Field(default=None, description=LOGIN_URL_HELP)


class SalesforceClientCredentialsIn(BaseModel):
    """Server to server: the client credentials flow as the connected app's Run As user."""

    consumer_key: str = Field(description="The connected app's Consumer Key.")
    consumer_secret: SecretStr = Field(description="The connected app's Consumer Secret.")
    login_url: str | None = Field(default=None, description="The org's My Domain login URL.")


class SalesforceConnectStartIn(BaseModel):
    """Connect Salesforce: where to send the admin to sign in (web server flow, PKCE)."""

    consumer_key: str = Field(description="The connected app's Consumer Key.")
    consumer_secret: SecretStr | None = Field(
        default=None, description="Its Consumer Secret, if the app requires it."
    )
    login_url: str | None = Field(default=None, description=LOGIN_URL_HELP)
    redirect_uri: str | None = Field(
        default=None, description="The callback URL; {public_url}/salesforce/callback if left out."
    )


class SalesforceConnectCompleteIn(BaseModel):
    """The query parameters Salesforce sent back to the callback URL."""

    callback: dict[str, str] = Field(description="e.g. {'code': ..., 'state': ...}.")


class SalesforceShareIn(BaseModel):
    share: float | None = Field(
        description="Share of the org's daily API requests m365sync may use, more than 0 and "
        "at most 1 (0.5 is half); null: the server's setting."
    )


class SalesforceLeadsIn(BaseModel):
    enabled: bool = Field(
        description="Create a Lead for an unknown person who books a meeting (off by default)."
    )


class SalesforceLinkIn(BaseModel):
    user: str = Field(description="The Salesforce user's id, username or email address.")


class SalesforceRetryIn(BaseModel):
    activity_ids: list[str] | None = Field(
        default=None, description="The parked records' activities; all parked ones if left out."
    )
