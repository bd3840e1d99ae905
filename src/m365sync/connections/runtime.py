"""Process-wide access to Microsoft for stored connections: MSAL apps, Graph clients,
sealed secrets, and ``graph_for_mailbox`` — how a sync unit reaches a member's mailbox.

One ``ConnectionRuntime`` per process. It keeps one MSAL app per connection (so tokens are
cached in memory between units), one ``GraphClient`` per connection and event loop (so
the 4-requests-per-mailbox limit is shared by every unit touching that mailbox; with
``share_graph_limits``, by every process too, through Redis: ``m365sync.microsoft.limits``),
and one
``RequestBudget`` per event loop (``sync_request_budget`` Graph requests in flight at
most, whichever units and connections send them).

Token caches: MSAL reports changes; the runtime keeps the newest serialized cache per
connection until ``save_token_caches(session)`` seals and stores it in the caller's
transaction (``graph_for_mailbox`` and the connection services call it; a sync job should
call it before committing, so a rotated refresh token is never lost).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx
from sqlalchemy.orm import Session

from m365sync.connections.errors import (
    DomainNotVerified,
    MemberNotSynced,
    NoConnection,
    UserAppNotConfigured,
)
from m365sync.connections.features import (
    FEATURE_TITLES,
    delegated_feature_matrix,
    delegated_scopes_for,
)
from m365sync.connections.models import (
    AuthorizationRequest,
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    Feature,
    ServiceAccount,
    UserConnection,
)
from m365sync.connections.repository import ConnectionRepository
from m365sync.crypto import SecretBox, seal_context
from m365sync.db.session import Database
from m365sync.microsoft.auth import (
    AppOnlyAuth,
    ClientCertificate,
    ClientSecret,
    Credential,
    DelegatedAuth,
)
from m365sync.microsoft.errors import (
    AuthRevoked,
    ConsentMissing,
    CredentialError,
    ExchangeCredentialsRejected,
    InvalidCredentials,
    MicrosoftError,
    SecretExpired,
)
from m365sync.microsoft.graph import (
    GraphClient,
    RequestBudget,
    TokenSource,
    slot_lease_seconds,
    user_path,
)
from m365sync.microsoft.limits import GRAPH_MAILBOX_WINDOW_SECONDS, SharedSlots
from m365sync.organizations.models import Member
from m365sync.organizations.repository import OrganizationRepository
from m365sync.organizations.service import unverified_reason
from m365sync.settings import Settings

if TYPE_CHECKING:  # exchangelib loads only when an Exchange connection is used
    from m365sync.microsoft.ews import ExchangeMailbox, ExchangeServer

Source = Literal["service_account", "user_connection"]
Sealable = ServiceAccount | UserConnection | AuthorizationRequest


@dataclass(frozen=True)
class MailboxAccess:
    """How to reach one member's mailbox for one feature, through Microsoft Graph."""

    graph: GraphClient
    user_path: str
    features: frozenset[Feature]
    source: Source
    connection_id: str
    exchange: None = None
    protocol: Literal["graph"] = "graph"


EXCHANGE_FEATURES = frozenset({Feature.EMAIL, Feature.CALENDAR, Feature.TASKS, Feature.SCHEDULING})
"""The features served over EWS (all of them)."""


@dataclass(frozen=True)
class ExchangeAccess:
    """How to reach one member's mailbox for one feature, through on-premises Exchange
    (EWS): an Exchange service account impersonating it, or the member's own Exchange
    connection. Code written for Graph that asks it for a Graph client is told why not."""

    exchange: ExchangeMailbox
    features: frozenset[Feature]
    source: Source
    connection_id: str
    protocol: Literal["ews"] = "ews"

    @property
    def graph(self) -> GraphClient:
        raise NoConnection(
            f"{self.exchange.address} is served by an Exchange Server (EWS), which this "
            "feature can't use yet.",
            fix="Connect the mailbox through Office 365 (Microsoft Graph) for this feature.",
        )

    @property
    def user_path(self) -> str:
        return ""


@dataclass
class ConnectionRuntime:
    settings: Settings
    box: SecretBox
    database: Database | None = None
    graph_transport: httpx.AsyncBaseTransport | None = None
    """Tests inject an httpx transport here; production uses the network."""
    share_graph_limits: bool = False
    """Keep Outlook's per-mailbox limits together with every other process, in Redis
    (``m365sync worker`` and ``m365sync scheduler``; only if ``graph_shared_limits``)."""
    _auth: dict[tuple[str, str], AppOnlyAuth | DelegatedAuth] = field(
        default_factory=dict, repr=False
    )
    _clients: dict[tuple[str, str, int], GraphClient] = field(default_factory=dict, repr=False)
    _exchange: dict[tuple[str, str], ExchangeServer] = field(default_factory=dict, repr=False)
    _dirty_caches: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RequestBudget] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database: Database | None = None,
        *,
        share_graph_limits: bool = False,
    ) -> ConnectionRuntime:
        """The secret key is created here on a fresh database only (``load_keys``)."""
        from m365sync.db.sealed import anything_sealed

        box = SecretBox.from_settings(
            settings,
            anything_sealed=(lambda: anything_sealed(database.engine)) if database else None,
        )
        return cls(
            settings=settings,
            box=box,
            database=database,
            share_graph_limits=share_graph_limits,
        )

    # -- sealed columns ---------------------------------------------------------------------

    def seal(self, row: Sealable, column: str, value: str | None) -> None:
        """Store ``value`` sealed in ``row.<column>`` (``None`` clears it)."""
        sealed = (
            None
            if value is None
            else self.box.seal(value, seal_context(row.__tablename__, column, row.id))
        )
        setattr(row, column, sealed)

    def open(self, row: Sealable, column: str) -> str | None:
        sealed = getattr(row, column)
        if sealed is None:
            return None
        return self.box.open(sealed, seal_context(row.__tablename__, column, row.id))

    # -- MSAL -------------------------------------------------------------------------------

    def _cache_listener(self, row: Sealable) -> Callable[[str], None]:
        key = (row.__tablename__, row.id)

        def remember(serialized: str) -> None:
            with self._lock:
                self._dirty_caches[key] = serialized

        return remember

    def credential(self, account: ServiceAccount) -> Credential:
        if account.credential_type == CredentialType.CERTIFICATE:
            return ClientCertificate(
                private_key_pem=self.open(account, "private_key_sealed") or "",
                certificate_pem=account.certificate_pem or "",
                thumbprint=account.certificate_thumbprint or "",
            )
        return ClientSecret(self.open(account, "secret_sealed") or "")

    def app_only_auth(self, account: ServiceAccount) -> AppOnlyAuth:
        key = (account.id, account.updated_at.isoformat())
        with self._lock:
            cached = self._auth.get(key)
        if isinstance(cached, AppOnlyAuth):
            return cached
        if not account.client_id or not account.tenant_id:
            raise NoConnection(
                f"The service account '{account.name}' has no client id or tenant yet.",
                fix="Run Test and save it again.",
            )
        auth = AppOnlyAuth(
            self.settings,
            client_id=account.client_id,
            tenant_id=account.tenant_id,
            credential=self.credential(account),
            cache_blob=self.open(account, "token_cache_sealed"),
            on_cache_change=self._cache_listener(account),
        )
        with self._lock:
            self._auth = {k: v for k, v in self._auth.items() if k[0] != account.id}
            self._auth[key] = auth
        return auth

    def user_app_credentials(self) -> tuple[str, str]:
        client_id = self.settings.user_app_client_id
        secret = self.settings.user_app_client_secret
        if not client_id or not secret:
            raise UserAppNotConfigured()
        return client_id, secret

    def delegated_auth(
        self, connection: UserConnection, *, tenant_id: str | None = None, fresh: bool = False
    ) -> DelegatedAuth:
        key = (connection.id, connection.updated_at.isoformat() if connection.updated_at else "")
        with self._lock:
            cached = self._auth.get(key)
        if isinstance(cached, DelegatedAuth) and not fresh:
            return cached
        client_id, secret = self.user_app_credentials()
        auth = DelegatedAuth(
            self.settings,
            client_id=client_id,
            tenant_id=tenant_id or connection.tenant_id or "organizations",
            credential=ClientSecret(secret),
            cache_blob=None if fresh else self.open(connection, "token_cache_sealed"),
            on_cache_change=self._cache_listener(connection),
            scopes=delegated_scopes_for(Feature),
            home_account_id=connection.home_account_id,
        )
        with self._lock:
            self._auth = {k: v for k, v in self._auth.items() if k[0] != connection.id}
            self._auth[key] = auth
        return auth

    def forget(self, row_id: str) -> None:
        with self._lock:
            self._auth = {k: v for k, v in self._auth.items() if k[0] != row_id}
            self._clients = {k: v for k, v in self._clients.items() if k[0] != row_id}

    def save_token_caches(self, session: Session) -> None:
        """Seal and store every token cache MSAL changed since the last call."""
        with self._lock:
            dirty, self._dirty_caches = self._dirty_caches, {}
        for (table, row_id), serialized in dirty.items():
            row: ServiceAccount | UserConnection | None = (
                session.get(ServiceAccount, row_id)
                if table == ServiceAccount.__tablename__
                else session.get(UserConnection, row_id)
            )
            if row is not None:
                self.seal(row, "token_cache_sealed", serialized)
        session.flush()

    # -- Graph ------------------------------------------------------------------------------

    def graph_client(
        self,
        row_id: str,
        version: str,
        token_source: TokenSource,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> GraphClient:
        """The connection's client for ``loop`` (default: the running one). A worker thread
        preparing a client for an event loop names that loop."""
        if loop is None and _has_loop():
            loop = asyncio.get_running_loop()
        loop_id = id(loop) if loop is not None else 0
        key = (row_id, version, loop_id)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = GraphClient(
                    self.settings,
                    token_source,
                    transport=self.graph_transport,
                    slots=self._shared_slots(row_id),
                )
                self._clients[key] = client
        return client

    def _shared_slots(self, row_id: str) -> SharedSlots | None:
        """Slots in Redis for the connection ``row_id``'s requests, when this process keeps
        Graph's limits together with the others."""
        settings = self.settings
        if not (self.share_graph_limits and settings.graph_shared_limits):
            return None
        return SharedSlots(
            settings.graph_limits_redis_url or settings.celery_broker_url,
            row_id,
            per_mailbox=settings.graph_concurrency_per_mailbox,
            per_connection=settings.graph_concurrency_per_connection,
            requests_per_window=settings.graph_mailbox_requests_per_window,
            window_seconds=GRAPH_MAILBOX_WINDOW_SECONDS,
            lease_seconds=slot_lease_seconds(settings),
        )

    def request_budget(self) -> RequestBudget:
        """The running event loop's cap on Graph requests in flight, shared by every sync
        unit run on it (a loop that is gone takes its budget with it)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            budget = self._budgets.get(loop)
            if budget is None:
                budget = self._budgets[loop] = RequestBudget(self.settings.sync_request_budget)
        return budget

    async def aclose(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def graph_for_mailbox(
        self,
        session: Session,
        member: Member,
        feature: Feature,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> MailboxAccess:
        """The connection that serves ``feature`` for ``member`` (see docs/connections.md);
        its Graph client is ``loop``'s (default: the running event loop's)."""
        self.save_token_caches(session)
        organizations = OrganizationRepository(session)
        domains = {d.name: d for d in organizations.domains(member.organization_id)}
        domain = domains.get(member.domain)
        if domain is None:
            raise MemberNotSynced(
                f"{member.email} is not in the organization's domains to sync.",
                fix=(
                    f"Add {member.domain} to the domains to sync, or use the member's address in "
                    "them."
                ),
            )
        if domain.verified_at is None:
            message, fix = unverified_reason(domain.name)
            raise DomainNotVerified(message, fix=fix)
        repo = ConnectionRepository(session)
        title = FEATURE_TITLES[feature]
        if feature != Feature.TASKS:
            for account in repo.service_accounts(member.organization_id):
                if account.kind != ConnectionKind.OFFICE365:
                    continue
                if domain.tenant_id and account.tenant_id and domain.tenant_id != account.tenant_id:
                    continue
                if feature.value not in account.enabled_features:
                    continue
                _raise_if_parked_service_account(account)
                auth = self.app_only_auth(account)
                return MailboxAccess(
                    graph=self.graph_client(
                        account.id, account.updated_at.isoformat(), auth, loop=loop
                    ),
                    user_path=user_path(member.email),
                    features=frozenset(Feature(f) for f in account.enabled_features),
                    source="service_account",
                    connection_id=account.id,
                )
        connection = repo.user_connection(member.organization_id, member.id)
        if connection is not None and connection.kind == ConnectionKind.OFFICE365:
            features = delegated_feature_matrix(connection.granted_scopes).enabled
            if feature in features:
                if connection.status == ConnectionStatus.NEEDS_RECONNECT:
                    raise AuthRevoked(connection.status_detail or None)
                auth_user = self.delegated_auth(connection)
                return MailboxAccess(
                    graph=self.graph_client(
                        connection.id, str(connection.updated_at), auth_user, loop=loop
                    ),
                    user_path="/me",
                    features=frozenset(features),
                    source="user_connection",
                    connection_id=connection.id,
                )
        if feature == Feature.TASKS:
            raise NoConnection(
                f"{title} for {member.email} needs their own Office 365 connection "
                "(Microsoft To Do has no application permission, so a service account can't sync "
                "tasks).",
                fix="The member connects their own mailbox (Connect your Office 365) and "
                "consents to Tasks.ReadWrite.",
            )
        raise NoConnection(
            f"No connection can serve {title} for {member.email}.",
            fix="Add an Office 365 service account whose permissions include it, or have the "
            "member connect their own mailbox (Connect your Office 365).",
        )

    # -- Exchange (EWS) ---------------------------------------------------------------------

    def exchange_server(self, row: ServiceAccount | UserConnection) -> ExchangeServer:
        from m365sync.microsoft.ews import ExchangeLogin, ExchangeServer

        """The EWS client of a stored Exchange connection, one per connection and version of
        it (its sessions are pooled across units)."""
        key = (row.id, str(row.updated_at))
        with self._lock:
            server = self._exchange.get(key)
        if server is not None:
            return server
        login = ExchangeLogin(row.username or "", self.open(row, "password_sealed") or "")
        server = ExchangeServer(
            self.settings,
            row.ews_url or "",
            login,
            impersonation=isinstance(row, ServiceAccount),
        )
        with self._lock:
            return self._exchange.setdefault(key, server)

    def exchange_for_mailbox(
        self, session: Session, member: Member, feature: Feature
    ) -> ExchangeAccess | None:
        """The Exchange connection serving ``feature`` for ``member``: an Exchange service
        account of the organization (tested, with the feature on), else the member's own
        Exchange connection; None when neither does."""
        if feature not in EXCHANGE_FEATURES:
            return None
        from m365sync.microsoft.ews import ExchangeMailbox

        repo = ConnectionRepository(session)
        for account in repo.service_accounts(member.organization_id):
            if account.kind != ConnectionKind.EXCHANGE or not account.ews_url:
                continue
            if feature.value not in account.enabled_features:
                continue
            if account.status not in (ConnectionStatus.ACTIVE, ConnectionStatus.PARTIAL):
                _raise_if_parked_exchange_account(account)
                continue
            return ExchangeAccess(
                exchange=ExchangeMailbox(self.exchange_server(account), member.email),
                features=frozenset(Feature(f) for f in account.enabled_features)
                & EXCHANGE_FEATURES,
                source="service_account",
                connection_id=account.id,
            )
        connection = repo.user_connection(member.organization_id, member.id)
        if connection is not None and connection.kind == ConnectionKind.EXCHANGE:
            if connection.status in (
                ConnectionStatus.NEEDS_RECONNECT,
                ConnectionStatus.INVALID_CREDENTIALS,
            ):
                raise ExchangeCredentialsRejected(
                    connection.status_detail or None, fix=connection.status_fix or None
                )
            if connection.ews_url:
                return ExchangeAccess(
                    exchange=ExchangeMailbox(self.exchange_server(connection), member.email),
                    features=EXCHANGE_FEATURES,
                    source="user_connection",
                    connection_id=connection.id,
                )
        return None

    def mailbox_access(
        self, session: Session, member: Member, feature: Feature, *, prefer: str = ""
    ) -> MailboxAccess | ExchangeAccess:
        """How a sync unit reaches the mailbox: Graph when a connection serves it there
        (``graph_for_mailbox``), else the organization's or the member's Exchange
        connection (``exchange_for_mailbox``). ``prefer="ews"`` (the last run was served over
        EWS: an on-premises mailbox of a hybrid organization) asks Exchange first."""
        if prefer == "ews":
            found = self.exchange_for_mailbox(session, member, feature)
            if found is not None:
                return found
        try:
            return self.graph_for_mailbox(session, member, feature)
        except NoConnection:
            found = self.exchange_for_mailbox(session, member, feature)
            if found is None:
                raise
            return found

    def other_protocol(
        self,
        session: Session,
        member: Member,
        feature: Feature,
        access: MailboxAccess | ExchangeAccess,
    ) -> MailboxAccess | ExchangeAccess | None:
        """The mailbox through the other protocol, for a mailbox ``access`` can't reach
        there (Graph: on-premises; the Exchange Server: moved to Exchange Online); None when
        no connection of the other kind serves it."""
        if access.protocol == "graph":
            return self.exchange_for_mailbox(session, member, feature)
        try:
            return self.graph_for_mailbox(session, member, feature)
        except NoConnection:
            return None

    def report_failure(
        self, session: Session, access: MailboxAccess | ExchangeAccess, error: MicrosoftError
    ) -> None:
        """Record a connection-level failure on the connection (mailbox-level causes, such as
        an access policy or an unlicensed mailbox, belong to the sync unit's status)."""
        if access.source == "service_account":
            account = session.get(ServiceAccount, access.connection_id)
            if account is not None:
                apply_service_account_error(account, error)
        else:
            connection = session.get(UserConnection, access.connection_id)
            if connection is not None and isinstance(
                error, AuthRevoked | CredentialError | ConsentMissing
            ):
                mark_needs_reconnect(connection, error)
        session.flush()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _raise_if_parked_service_account(account: ServiceAccount) -> None:
    """Causes only an admin can fix here (new secret, corrected credentials) stop the unit
    without a round trip to Microsoft; the others are retried, so fixing them in Entra is
    enough for syncing to resume."""
    if account.status == ConnectionStatus.NEEDS_NEW_SECRET:
        raise SecretExpired(account.status_detail or None, fix=account.status_fix or None)
    if account.status == ConnectionStatus.INVALID_CREDENTIALS:
        raise InvalidCredentials(account.status_detail or None, fix=account.status_fix or None)


def _raise_if_parked_exchange_account(account: ServiceAccount) -> None:
    """An Exchange service account whose password was refused stops the unit with that
    cause (only an admin can fix it), rather than "no connection"."""
    if account.status == ConnectionStatus.INVALID_CREDENTIALS:
        raise ExchangeCredentialsRejected(
            account.status_detail or None, fix=account.status_fix or None
        )


def apply_service_account_error(account: ServiceAccount, error: MicrosoftError) -> None:
    if isinstance(error, SecretExpired):
        account.status = ConnectionStatus.NEEDS_NEW_SECRET
    elif isinstance(error, ConsentMissing):
        account.status = ConnectionStatus.NEEDS_CONSENT
    elif isinstance(error, CredentialError):
        account.status = ConnectionStatus.INVALID_CREDENTIALS
    else:
        return
    account.status_detail = error.message
    account.status_fix = error.fix or ""


def mark_needs_reconnect(connection: UserConnection, error: MicrosoftError) -> None:
    """Set "reconnect needed"; the notice is shown once (``status_notified_at`` stays set
    while the status lasts)."""
    if connection.status != ConnectionStatus.NEEDS_RECONNECT:
        connection.status = ConnectionStatus.NEEDS_RECONNECT
        connection.status_notified_at = None
    connection.status_detail = error.message
    connection.status_fix = error.fix or AuthRevoked.default_fix
