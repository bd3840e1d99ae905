"""Engine settings (``M365SYNC_*`` environment variables, like every other setting).

They tune how the work runs, not what is synced: what is synced is per organization, in
``SyncSettings`` (database). A class of their own (same prefix, same config file as
``m365sync.settings.Settings``) because only the sync engine and its workers read them and
the CLI, tests and benchmark override them per run. Every one is documented in
``docs/configuration.md`` ("Sync engine"; a test checks it).
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["EngineSettings", "get_engine_settings"]


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="M365SYNC_",
        env_file=os.environ.get("M365SYNC_CONFIG_FILE", "m365sync.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

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


@lru_cache(maxsize=1)
def get_engine_settings() -> EngineSettings:
    return EngineSettings()
