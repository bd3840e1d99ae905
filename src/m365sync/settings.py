"""Settings, from environment variables (``M365SYNC_*``) and an optional config file.

Precedence, highest first: environment variables, the TOML/``.env``-style config file named
by ``M365SYNC_CONFIG_FILE`` (default ``m365sync.env`` in the working directory, if present),
then the defaults below. Every setting is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
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
    authority_host: str = Field(default="https://login.microsoftonline.com")
    graph_url: str = Field(default="https://graph.microsoft.com/v1.0")
    ca_bundle: Path | None = Field(
        default=None, description="Extra CA bundle to trust for Microsoft endpoints (m365sim's)."
    )
    public_url: str = Field(default="http://localhost:8365", description="Where users reach the web app.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'm365sync.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
