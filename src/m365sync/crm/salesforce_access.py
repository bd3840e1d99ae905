"""Reaching the organization's Salesforce org from its stored connection: the token source
its sign-in kind needs (secrets opened from their sealed columns), the org's API budget
(one per organization and process, seeded with the usage last stored), and a client.

Everything here runs outside database transactions except ``seal``/``unseal`` and
``remember``, which touch the connection row in the caller's session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from m365sync.crm.errors import SalesforceNotConnected
from m365sync.crm.models import SalesforceAuthKind, SalesforceConnection, SalesforceStatus
from m365sync.crypto import SecretBox, seal_context
from m365sync.db.base import utcnow
from m365sync.salesforce import (
    ApiBudget,
    ApiUsage,
    ClientCredentialsFlow,
    ConsumerSecret,
    JwtBearerFlow,
    JwtSigningKey,
    RefreshTokenFlow,
    SalesforceClient,
    SalesforceToken,
    TokenSource,
)
from m365sync.salesforce._http import SalesforceSession
from m365sync.settings import Settings

__all__ = [
    "ConnectionSecrets",
    "budget_for",
    "open_client",
    "remember",
    "seal",
    "token_source",
    "unseal",
]

_BUDGETS: dict[str, ApiBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def seal(box: SecretBox, row: SalesforceConnection, column: str, value: str | None) -> None:
    """Store ``value`` sealed in ``row.<column>`` (None clears it)."""
    sealed = (
        None
        if value is None
        else box.seal(value, seal_context(SalesforceConnection.__tablename__, column, row.id))
    )
    setattr(row, column, sealed)


def unseal(box: SecretBox, row: SalesforceConnection, column: str) -> str | None:
    sealed = getattr(row, column)
    if sealed is None:
        return None
    return box.open(sealed, seal_context(SalesforceConnection.__tablename__, column, row.id))


@dataclass(frozen=True, repr=False)
class ConnectionSecrets:
    """What signing in needs, read from the connection row (secrets opened), detached from
    the session so Salesforce is called outside any database transaction."""

    organization_id: str
    auth_kind: SalesforceAuthKind
    login_url: str
    consumer_key: str
    username: str | None = None
    consumer_secret: str | None = None
    private_key_pem: str | None = None
    refresh_token: str | None = None
    api_share: float | None = None
    api_used: int | None = None
    api_limit: int | None = None
    api_observed_at: datetime | None = None

    @classmethod
    def of(cls, row: SalesforceConnection, box: SecretBox) -> ConnectionSecrets:
        return cls(
            organization_id=row.organization_id,
            auth_kind=row.auth_kind,
            login_url=row.login_url,
            consumer_key=row.consumer_key,
            username=row.username,
            consumer_secret=unseal(box, row, "consumer_secret_sealed"),
            private_key_pem=unseal(box, row, "private_key_sealed"),
            refresh_token=unseal(box, row, "refresh_token_sealed"),
            api_share=row.api_share,
            api_used=row.api_used,
            api_limit=row.api_limit,
            api_observed_at=row.api_observed_at,
        )

    def __repr__(self) -> str:
        return (
            f"ConnectionSecrets(organization_id={self.organization_id!r}, "
            f"auth_kind={self.auth_kind.value!r}, login_url={self.login_url!r})"
        )


def token_source(
    secrets: ConnectionSecrets, settings: Settings, *, http: requests.Session | None = None
) -> TokenSource:
    """The flow that signs in as the connection says."""
    secret = ConsumerSecret(secrets.consumer_secret) if secrets.consumer_secret else None
    if secrets.auth_kind == SalesforceAuthKind.JWT_BEARER:
        return JwtBearerFlow(
            settings,
            consumer_key=secrets.consumer_key,
            username=secrets.username or "",
            signing_key=JwtSigningKey(secrets.private_key_pem or ""),
            login_url=secrets.login_url,
            http=http,
        )
    if secrets.auth_kind == SalesforceAuthKind.CLIENT_CREDENTIALS:
        return ClientCredentialsFlow(
            settings,
            consumer_key=secrets.consumer_key,
            consumer_secret=secret or ConsumerSecret(""),
            login_url=secrets.login_url,
            http=http,
        )
    return RefreshTokenFlow(
        settings,
        consumer_key=secrets.consumer_key,
        refresh_token=secrets.refresh_token or "",
        consumer_secret=secret,
        login_url=secrets.login_url,
        http=http,
    )


def budget_for(secrets: ConnectionSecrets, settings: Settings) -> ApiBudget:
    """The organization's budget in this process: its share of the org's daily API
    requests, starting from the usage last stored (so a new process does not spend blind)."""
    share = secrets.api_share or settings.salesforce_api_share
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(secrets.organization_id)
        if budget is None or budget.share != share:
            budget = ApiBudget(share)
            _BUDGETS[secrets.organization_id] = budget
    if (
        budget.usage is None
        and secrets.api_used is not None
        and secrets.api_limit
        and secrets.api_observed_at is not None
    ):
        budget.observe(
            ApiUsage(
                used=secrets.api_used,
                limit=secrets.api_limit,
                observed_at=secrets.api_observed_at,
            )
        )
    return budget


class _CallCounter:
    """Counts the REST API requests answered (OAuth sign-ins are not API requests)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "/services/data/" in (response.request.url or ""):
            self.calls += 1


class CountedClient(SalesforceClient):
    """A ``SalesforceClient`` that knows how many API requests it sent."""

    def __init__(self, *args: Any, counter: _CallCounter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counter = counter

    @property
    def api_calls(self) -> int:
        return self._counter.calls


@contextmanager
def open_client(
    secrets: ConnectionSecrets,
    settings: Settings,
    *,
    http: requests.Session | None = None,
    budget: bool = True,
    token: SalesforceToken | None = None,
) -> Iterator[CountedClient]:
    """A client on the connection's org, under the organization's API budget (``budget``
    False: outside it, for Run Test's few calls). ``token`` is a session just issued (no
    second sign-in); ``http`` replaces the network session (tests route Salesforce's host
    names to sfsim)."""
    session = http if http is not None else SalesforceSession(settings)
    counter = _CallCounter()
    session.hooks["response"].append(counter)
    client = CountedClient(
        settings,
        token_source(secrets, settings, http=session),
        token=token,
        budget=budget_for(secrets, settings) if budget else None,
        http=session,
        counter=counter,
    )
    try:
        yield client
    finally:
        client.close()
        session.hooks["response"].remove(counter)
        if http is None:
            session.close()


def working_secrets(
    row: SalesforceConnection | None, box: SecretBox, *, refused: str
) -> ConnectionSecrets:
    """The secrets of a connection that works (active, or needing setup); otherwise
    ``SalesforceNotConnected`` saying what can't be done (``refused``) and the connection's
    own fix."""
    if row is None or row.status not in (SalesforceStatus.ACTIVE, SalesforceStatus.NEEDS_SETUP):
        raise SalesforceNotConnected(
            f"{refused}: the organization's Salesforce connection is not working.",
            fix=row.status_fix if row is not None and row.status_fix else None,
        )
    return ConnectionSecrets.of(row, box)


def remember(
    row: SalesforceConnection, client: SalesforceClient, box: SecretBox | None = None
) -> None:
    """Keep what the client learnt on the connection row: the org's API usage, and a
    refresh token Salesforce rotated (Connect Salesforce connections)."""
    usage = client.api_usage
    if usage is not None and (
        row.api_observed_at is None or usage.observed_at >= row.api_observed_at
    ):
        row.api_used, row.api_limit = usage.used, usage.limit
        row.api_observed_at = usage.observed_at
    if box is None or row.auth_kind != SalesforceAuthKind.WEB_SERVER:
        return
    token = client.session_token
    rotated = token.refresh_token if token is not None else None
    if rotated and rotated != unseal(box, row, "refresh_token_sealed"):
        seal(box, row, "refresh_token_sealed", rotated)
        row.updated_at = utcnow()
