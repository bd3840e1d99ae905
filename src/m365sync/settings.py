"""Settings, from environment variables (``M365SYNC_*``) and an optional config file.

Precedence, highest first: environment variables, the ``.env``-style config file named
by ``M365SYNC_CONFIG_FILE`` (default ``m365sync.env`` in the working directory, if present),
then the defaults below. Every setting is documented in ``docs/configuration.md``; keep the
two in step (a test compares them).
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
        default=None, description="Extra CA bundle to trust for Microsoft endpoints (m365sim's)."
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
    graph_timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request timeout.")

    # Service accounts.
    secret_expiry_warning_days: tuple[int, ...] = Field(
        default=(30, 14, 7), description="Warn this many days before a client secret expires."
    )

    # The JSON API and web server.
    host: str = Field(default="127.0.0.1", description="Address `m365sync serve` listens on.")
    port: int = Field(default=8365, description="Port `m365sync serve` listens on.")
    log_level: str = Field(default="INFO", description="Python logging level.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'm365sync.db').resolve()}"

    @property
    def tls_verify(self) -> str | bool:
        """What to pass as ``verify`` to requests and MSAL."""
        return str(self.ca_bundle) if self.ca_bundle else True

    def httpx_verify(self) -> ssl.SSLContext | bool:
        """What to pass as ``verify`` to httpx (system CAs, plus ``ca_bundle`` when set)."""
        if not self.ca_bundle:
            return True
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.ca_bundle))
        return context


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
