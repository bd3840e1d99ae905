"""SfState: everything one running sfsim holds, and the knobs tests turn.

One ``SfState`` per server, holding one Salesforce org: its identity (``OrgInfo``), its
records (``RecordStore``), its connected apps and sessions (``AuthBackend``), the
rolling API usage, a controllable clock, the request log and the fault book. ``reset()``
returns it to an empty org, like moto's ``reset()``; ``SfConfig`` survives a reset.

All mutation happens on the server's event loop thread; tests that touch the state
directly do so between requests.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sfsim.ids import make_id
from sfsim.schema.standard import ORGANIZATION_PREFIX

T = TypeVar("T")

# Salesforce's login hosts; a sandbox answers only on the test one.
PRODUCTION_LOGIN_HOST = "login.salesforce.com"
SANDBOX_LOGIN_HOST = "test.salesforce.com"


@dataclass
class RequestRecord:
    """One entry in the request log, as ``GET /_sim/requests`` returns it."""

    method: str
    path: str
    query: str
    status: int
    started_at: datetime
    duration_ms: float
    counted: bool = False  # counted against the daily API request limit
    app: str | None = None  # the connected app's name
    username: str | None = None
    request_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "startedAt": self.started_at.isoformat(),
            "durationMs": round(self.duration_ms, 3),
            "countedAsApiRequest": self.counted,
            "app": self.app,
            "username": self.username,
            "requestId": self.request_id,
        }


class Clock:
    """Wall-clock time plus an offset that ``POST /_sim/clock`` moves forward, so tests
    expire sessions, query cursors and the daily API window without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class SfConfig:
    """Behaviour switches; ``PATCH /_sim/config`` changes them at run time."""

    # The org's rolling 24-hour API request allowance (Enterprise Edition's base).
    daily_api_requests: int = 100_000
    # Data storage, counted as Salesforce does: 2 KB per record for most objects.
    data_storage_mb: int = 1024
    # Session timeout of access tokens (Salesforce's default is 2 hours).
    session_timeout_seconds: int = 7200
    # Query cursors (nextRecordsUrl) expire after 15 minutes unused.
    query_locator_timeout_seconds: int = 900
    # Most ids sObject Get Updated / Get Deleted answer for one window; more is a 400
    # EXCEEDED_ID_LIMIT (Salesforce's limit is 600,000; tests lower it).
    replication_id_limit: int = 600_000
    # Realistic latency: every Salesforce answer waits latency_ms ± jitter_ms (seeded).
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    latency_seed: int = 0


@dataclass
class OrgInfo:
    """Who the org is: id, name, My Domain and whether it is a sandbox."""

    id: str = field(default_factory=lambda: make_id(ORGANIZATION_PREFIX, 1, pod="5g"))
    name: str = "sfsim org"
    my_domain: str = "sfsim"
    sandbox: str | None = None  # the sandbox name, e.g. "uat"
    edition: str = "Enterprise Edition"
    # Enhanced Email (Setup → Enhanced Email). Off, the org has neither EmailMessage nor
    # EmailMessageRelation (as an org with Email-to-Case off too): emails are logged as Tasks.
    enhanced_email: bool = True

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    @property
    def login_host(self) -> str:
        return SANDBOX_LOGIN_HOST if self.is_sandbox else PRODUCTION_LOGIN_HOST

    @property
    def my_domain_host(self) -> str:
        if self.sandbox:
            return f"{self.my_domain}--{self.sandbox}.sandbox.my.salesforce.com"
        return f"{self.my_domain}.my.salesforce.com"


class ApiUsage:
    """The org's API requests in the rolling 24 hours, as ``DailyApiRequests`` counts them."""

    WINDOW = timedelta(hours=24)

    def __init__(self) -> None:
        self.requests: deque[datetime] = deque()

    def used(self, now: datetime) -> int:
        horizon = now - self.WINDOW
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        return len(self.requests)

    def record(self, now: datetime) -> None:
        self.requests.append(now)


class SfState:
    def __init__(self, config: SfConfig | None = None) -> None:
        self.config = config or SfConfig()
        self.clock = Clock()
        self.base_url = "https://127.0.0.1"  # set by the server once it knows its port
        self.reset()

    def reset(self) -> None:
        """An empty org: no records, apps, sessions, log entries, usage or faults."""
        from sfsim.data.models import RecordStore
        from sfsim.oauth.models import AuthBackend

        self.clock.offset = timedelta(0)
        self.org = OrgInfo()
        self.records = RecordStore(self)
        self.auth = AuthBackend(self)
        self.usage = ApiUsage()
        self.request_log: list[RequestRecord] = []
        self.extensions: dict[str, Any] = {}
        self.latency_rng = random.Random(self.config.latency_seed)  # noqa: S311 - not security

    def now(self) -> datetime:
        return self.clock.now()

    def extension(self, name: str, factory: Callable[[], T]) -> T:
        """Backend-private, state-wide data (the fault book, ...), emptied by reset."""
        if name not in self.extensions:
            self.extensions[name] = factory()
        value: T = self.extensions[name]
        return value

    def api_usage(self) -> tuple[int, int]:
        """``(used, max)`` of the daily API request limit, now."""
        return self.usage.used(self.now()), self.config.daily_api_requests

    def limit_info_header(self) -> str:
        used, maximum = self.api_usage()
        return f"api-usage={used}/{maximum}"
