"""Settings, from environment variables (``M365SYNC_*``) and an optional config file.

Precedence, highest first: environment variables, the ``.env``-style config file named
by ``M365SYNC_CONFIG_FILE`` (default ``m365sync.env`` in the working directory, if present),
then the defaults below. Every setting is documented in ``docs/configuration.md``; keep the
two in step (a test compares them).

The sync engine's tuning (``sync_*``, the webhook URL, Celery) is here too: the engine,
its workers, the CLI, the tests and the benchmark read it from the same object, and
override it per run by constructing one with keywords.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from functools import cached_property, lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Self

import certifi
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="M365SYNC_",
        env_file=os.environ.get("M365SYNC_CONFIG_FILE", "m365sync.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(default=Path(".m365sync"), description="SQLite file, key file, logs.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite at {data_dir}/m365sync.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    secret_key: str | None = Field(
        default=None,
        description="Base64 of 32 bytes: the AES-GCM key for secrets at rest. "
        "Default: {data_dir}/secret.key, created with 0600 permissions on first run.",
    )
    # Microsoft endpoints: settings, never literals (national clouds; m365sim in tests).
    authority_host: str = Field(
        default="https://login.microsoftonline.com",
        description=(
            "Microsoft Entra ID authority host (national clouds: login.microsoftonline.us, ...)."
        ),
    )
    graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0",
        description="Microsoft Graph base URL, with version.",
    )
    graph_resource: str = Field(
        default="https://graph.microsoft.com",
        description="The Graph resource tokens are requested for ({graph_resource}/.default); "
        "national clouds: https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn.",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="CA bundle to trust for Microsoft and Salesforce endpoints (the emulators').",
    )
    public_url: str = Field(
        default="http://localhost:8365", description="Where users reach the web app."
    )

    # The app registration users sign in to for "Connect your Office 365" (delegated).
    user_app_client_id: str | None = Field(
        default=None, description="Application (client) ID of the app used for user connections."
    )
    user_app_client_secret: str | None = Field(
        default=None, description="Client secret value of that app (kept in memory only)."
    )

    # Graph client behaviour.
    graph_max_retries: int = Field(
        default=5,
        ge=0,
        description="Retries of a throttled (429) or transient (5xx, network) request.",
    )
    graph_backoff_base_seconds: float = Field(
        default=0.5, ge=0, description="First back-off delay when Microsoft gave no Retry-After."
    )
    graph_backoff_max_seconds: float = Field(
        default=60.0, ge=0, description="Longest single wait (Retry-After included) before a retry."
    )
    graph_concurrency_per_mailbox: int = Field(
        default=4,
        ge=1,
        le=4,
        description="Concurrent Graph requests per mailbox (Outlook allows 4).",
    )
    graph_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Timeout of each network step of a Graph request (connecting, sending, "
        "each read); one attempt as a whole, up to the last byte of its answer, is cut off at "
        "twice this.",
    )
    graph_shared_limits: bool = Field(
        default=True,
        description="`m365sync worker` and `m365sync scheduler` keep Outlook's per-mailbox "
        "limits together, in Redis, so adding workers adds no throttling. Off: each process "
        "keeps them on its own.",
    )
    graph_limits_redis_url: str | None = Field(
        default=None,
        description="Redis where processes keep Graph's limits together (default: the Celery "
        "broker).",
    )
    graph_mailbox_requests_per_window: int = Field(
        default=9_000,
        ge=1,
        description="Graph requests per mailbox in 10 minutes, across every process (Outlook "
        "allows 10,000; the margin covers its undocumented accounting).",
    )
    graph_concurrency_per_connection: int = Field(
        default=32,
        ge=1,
        description="Graph requests in flight at once through one connection (one app in one "
        "tenant), across every process sharing the limits.",
    )

    # Service accounts.
    secret_expiry_warning_days: tuple[int, ...] = Field(
        default=(30, 14, 7), description="Warn this many days before a client secret expires."
    )
    certificate_lifetime_days: int = Field(
        default=365,
        ge=30,
        le=3650,
        description="Validity of the certificates m365sync generates for the app registrations "
        "it sets up itself (Set up for me, and each renewal).",
    )
    certificate_renewal_days: int = Field(
        default=30,
        ge=1,
        description="Renew the certificate of an app registration m365sync set up itself this "
        "many days before it expires (a new one is added, tested, used, the old one removed).",
    )
    setup_replication_timeout_seconds: float = Field(
        default=180.0,
        ge=0,
        description="How long Set up for me and certificate renewal wait for Microsoft Entra ID "
        "to replicate a new app or certificate before giving up (it usually takes seconds, "
        "sometimes minutes).",
    )
    setup_replication_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often Microsoft Entra ID is asked again while replication is awaited.",
    )

    # The JSON API and web server.
    host: str = Field(default="127.0.0.1", description="Address `m365sync serve` listens on.")
    port: int = Field(default=8365, description="Port `m365sync serve` listens on.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: str = Field(
        default="text",
        description="text, or json: one JSON object a line with request and unit ids.",
    )

    # The sync engine: how the work runs. What is synced is per organization, in the
    # database (``m365sync.sync.models.SyncSettings``).
    sync_page_size: int = Field(
        default=1000, ge=10, le=1000, description="odata.maxpagesize of delta rounds."
    )
    sync_max_body_chars: int = Field(
        default=200_000, ge=0, description="Longer email bodies are stored truncated."
    )
    sync_lease_seconds: int = Field(
        default=300, ge=2, description="A running unit's lease; renewed every page."
    )
    sync_stuck_after_seconds: int = Field(
        default=1800,
        ge=60,
        description="A unit in a running stage this long without a lease is reset.",
    )
    sync_max_parallel_units: int = Field(
        default=8, ge=1, description="Units the in-process scheduler runs at once."
    )
    sync_max_first_syncs: int | None = Field(
        default=None,
        ge=1,
        description="First syncs `m365sync scheduler` lets run (or wait in the queue) at "
        "once; keep it below the pool processes of all workers so incremental syncs always "
        "find one free. Unset: no cap.",
    )
    sync_request_budget: int = Field(
        default=16,
        ge=1,
        description="Graph requests in flight at once in this process (all mailboxes).",
    )
    sync_jitter_seconds: float = Field(
        default=30.0, ge=0, description="Random delay added to every poll interval."
    )
    sync_parked_retry_seconds: int = Field(
        default=900,
        ge=10,
        description="How often a parked unit checks whether its cause was fixed.",
    )
    sync_subscribed_poll_factor: int = Field(
        default=6,
        ge=1,
        description="Poll interval multiplier while change notifications are healthy.",
    )
    webhook_url: str | None = Field(
        default=None,
        description=(
            "Public HTTPS URL of /webhooks/microsoft (change notifications); unset: polling only."
        ),
    )
    celery_broker_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Celery broker (scale-out workers)."
    )
    celery_result_backend: str | None = Field(default=None, description="Celery result backend.")
    celery_queue: str = Field(default="m365sync", description="The Celery queue sync units go to.")
    celery_queue_limit: int = Field(
        default=64,
        ge=1,
        description="Most units waiting in the Celery queue; the rest wait in the database, "
        "longest due first.",
    )
    worker_concurrency: int = Field(
        default=2, ge=1, description="Pool processes of one `m365sync worker` (units at once)."
    )
    scheduler_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often `m365sync scheduler` queues due units."
    )
    scheduler_election_seconds: float = Field(
        default=30.0,
        ge=2,
        description="How long the elected scheduler leads without renewing; a standby "
        "takes over once it has passed.",
    )
    metrics_port: int | None = Field(
        default=None,
        description="Port where `m365sync scheduler` and `m365sync worker` serve /metrics.",
    )
    sqlite_busy_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long a write to the SQLite database waits for another process's write "
            "before it fails with 'the database is busy'."
        ),
    )

    # Salesforce: where to sign in, how long to wait, and how much of the org's daily API
    # allowance m365sync may use. The login URL is a setting, never a literal (sandboxes,
    # My Domains, and sfsim in tests).
    salesforce_login_url: str = Field(
        default="https://login.salesforce.com",
        description="Default Salesforce login URL: https://login.salesforce.com (production), "
        "https://test.salesforce.com (sandbox) or https://<name>.my.salesforce.com (My Domain).",
    )
    salesforce_api_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the org's rolling 24-hour API request limit m365sync may use.",
    )
    salesforce_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of one Salesforce request."
    )

    # Anonymous visitors and Microsoft's callbacks (docs/security.md). Limits are per
    # minute; 0 switches one off.
    rate_limit_booking_views_per_minute: int = Field(
        default=30, ge=0, description="Booking pages (open times) one visitor may open."
    )
    rate_limit_booking_views_per_link_per_minute: int = Field(
        default=120, ge=0, description="Times one booking page may be opened, by anyone."
    )
    rate_limit_bookings_per_minute: int = Field(
        default=10, ge=0, description="Bookings, cancellations and moves one visitor may send."
    )
    rate_limit_bookings_per_link_per_minute: int = Field(
        default=30, ge=0, description="Bookings one booking page (or invitee link) takes."
    )
    rate_limit_sign_ins_per_minute: int = Field(
        default=10, ge=0, description="Sign-in attempts (password or Microsoft) per visitor."
    )
    anonymous_requests_at_once: int = Field(
        default=8,
        ge=1,
        description="Public booking requests (which ask Microsoft) served at once; others wait.",
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=("127.0.0.1", "::1"),
        description="Reverse proxies (addresses or networks) whose X-Forwarded-For is believed.",
    )
    webhook_max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest change-notification POST accepted."
    )
    webhook_max_notifications: int = Field(
        default=1000, ge=1, description="Most notifications accepted in one POST."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network: list your reverse proxies' "
                    'addresses, e.g. ["127.0.0.1", "10.0.0.0/8"].'
                ) from None
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'm365sync.db').resolve()}"

    @property
    def tls_verify(self) -> str | bool:
        """``verify`` for requests and MSAL, which take a CA bundle path (or ``True``)."""
        return str(self.ca_bundle) if self.ca_bundle else True

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """``verify`` for httpx: the system's CAs plus ``ca_bundle``. Built once and shared
        by every client, since loading CA certificates costs milliseconds per client."""
        context = ssl.create_default_context()
        if not context.cert_store_stats()["x509_ca"]:
            # No system store (some slim containers): trust what httpx trusts by default.
            context.load_verify_locations(cafile=certifi.where())
        if self.ca_bundle and not _is_default_cafile(self.ca_bundle):
            context.load_verify_locations(cafile=str(self.ca_bundle))
        return context

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("ssl_context", None)  # the copy may name another CA bundle
        return copy


def _is_default_cafile(bundle: Path) -> bool:
    """Whether ``bundle`` is the file the system's default trust was just loaded from (as
    when ``SSL_CERT_FILE`` names it too): loaded once, not twice (about 25 ms each)."""
    default = ssl.get_default_verify_paths().cafile
    return default is not None and Path(default).resolve() == Path(bundle).resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
