"""SimState: everything one running m365sim holds, and the knobs tests turn.

One ``SimState`` per server. It owns the tenants (each a ``Tenant`` with its directory),
the per-user mailboxes (stores registered by the Graph backends), the token signing
key, a controllable clock, the request log and a change feed that subscriptions listen
to. ``reset()`` returns it to empty, like moto's ``reset()``.

All mutation happens on the server's event loop thread; tests that touch the state
directly do so between requests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from m365sim.directory.models import Tenant, User

StoreT = TypeVar("StoreT")


@dataclass
class RequestRecord:
    """One entry in the request log, as ``GET /_sim/requests`` returns it."""

    method: str
    path: str
    query: str
    status: int
    started_at: datetime
    duration_ms: float
    tenant_id: str | None = None
    app_id: str | None = None
    user_id: str | None = None  # the signed-in user (delegated) or None (app-only)
    mailbox: str | None = None  # the user whose mailbox was addressed
    request_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "startedAt": self.started_at.isoformat(),
            "durationMs": round(self.duration_ms, 3),
            "tenantId": self.tenant_id,
            "appId": self.app_id,
            "userId": self.user_id,
            "mailbox": self.mailbox,
            "requestId": self.request_id,
        }


@dataclass(frozen=True)
class Change:
    """A change to a mailbox resource, published for change notifications.

    ``resource`` is ``"message"``, ``"event"`` or ``"todoTask"``; ``change_type`` is
    Graph's ``created`` / ``updated`` / ``deleted``; ``folder_id`` names the mail folder
    or calendar (or To Do list) that holds the item, so folder-scoped subscriptions match.
    """

    tenant_id: str
    user_id: str
    resource: str
    change_type: str
    item_id: str
    folder_id: str | None = None


@dataclass
class Mailbox:
    """A user's Exchange mailbox: a bag of stores, one per Graph backend (mail, calendar,
    To Do), created on first use through ``SimState.store``."""

    user_id: str
    tenant_id: str
    stores: dict[str, Any] = field(default_factory=dict)


class Clock:
    """Wall-clock time plus an offset that ``POST /_sim/clock`` can move forward, so
    tests can expire secrets, tokens and delta cursors without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class SimConfig:
    """Behaviour switches; the control API changes them at run time."""

    # Outlook's limits, per app per mailbox (Graph throttling guidance).
    throttling_enabled: bool = True
    requests_per_window: int = 10_000
    window_seconds: int = 600
    concurrent_requests: int = 4
    # Delta cursors (sync state) expire after this long unused.
    delta_token_lifetime_seconds: int = 7 * 24 * 3600
    access_token_lifetime_seconds: int = 3599
    refresh_token_lifetime_seconds: int = 90 * 24 * 3600
    # Replay already-seen items in delta rounds, like Exchange does now and then.
    delta_replay: bool = True
    # The latency model (m365sim.latency): realistic by default; the pytest plugin sets the
    # "none" profile for tests that don't ask for realistic latency.
    latency_base_ms: int = 120
    latency_per_kib_ms: float = 0.5
    latency_jitter: float = 0.35
    latency_max_ms: int = 10_000
    latency_seed: int = 0
    # Application access policy / RBAC for Applications changes reach Graph this much later
    # (Exchange: "longer than 1 hour", "30 minutes to 2 hours"); 0 applies them at once.
    policy_propagation_seconds: int = 3600
    # Graph refuses http:// notification URLs; true accepts them (local development only).
    allow_http_notification_urls: bool = False
    # $batch answers in an order that is not request order, as Graph may (seeded).
    batch_shuffle: bool = True
    batch_order_seed: int = 0


class SimState:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = Clock()
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_kid = uuid.uuid4().hex[:27]
        self.lock = threading.RLock()
        self.change_listeners: list[Callable[[Change], None]] = []
        self.reset_listeners: list[Callable[[], None]] = []
        self.base_url = "https://127.0.0.1"  # set by the server once it knows its port
        self.reset()

    # -- lifecycle -------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every tenant, mailbox, log entry and injected fault."""
        self.tenants: dict[str, Tenant] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.request_log: list[RequestRecord] = []
        self.extensions: dict[str, Any] = {}  # backend-private state keyed by backend name
        self.clock.offset = timedelta(0)
        for listener in self.reset_listeners:
            listener()

    def now(self) -> datetime:
        return self.clock.now()

    # -- directory ---------------------------------------------------------------------
    def add_tenant(self, tenant: Tenant) -> Tenant:
        self.tenants[tenant.id] = tenant
        return tenant

    def find_tenant(self, key: str) -> Tenant | None:
        """A tenant by id or by any of its verified domains (case-insensitive)."""
        if key in self.tenants:
            return self.tenants[key]
        lowered = key.lower()
        for tenant in self.tenants.values():
            if tenant.id.lower() == lowered or tenant.owns_domain(lowered):
                return tenant
        return None

    def find_user_anywhere(self, address: str) -> tuple[Tenant, User] | None:
        for tenant in self.tenants.values():
            user = tenant.find_user(address)
            if user is not None:
                return tenant, user
        return None

    # -- mailboxes ---------------------------------------------------------------------
    def mailbox(self, tenant: Tenant, user: User) -> Mailbox:
        box = self.mailboxes.get(user.id)
        if box is None:
            box = self.mailboxes[user.id] = Mailbox(user_id=user.id, tenant_id=tenant.id)
        return box

    def store(self, tenant: Tenant, user: User, name: str, factory: Callable[[], StoreT]) -> StoreT:
        """The backend store ``name`` of a user's mailbox, created by ``factory`` on first use."""
        stores = self.mailbox(tenant, user).stores
        if name not in stores:
            stores[name] = factory()
        store: StoreT = stores[name]
        return store

    def extension(self, name: str, factory: Callable[[], StoreT]) -> StoreT:
        """Backend-private, state-wide data (subscriptions, faults, throttling counters)."""
        if name not in self.extensions:
            self.extensions[name] = factory()
        value: StoreT = self.extensions[name]
        return value

    # -- change feed -------------------------------------------------------------------
    def publish(self, change: Change) -> None:
        for listener in list(self.change_listeners):
            listener(change)
