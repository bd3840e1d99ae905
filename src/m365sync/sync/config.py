"""The sync engine's settings, under the names the engine has always used.

They are fields of ``m365sync.settings.Settings`` (``M365SYNC_SYNC_*``, the webhook URL,
Celery), documented in ``docs/configuration.md`` under "Sync engine".
"""

from __future__ import annotations

from m365sync.settings import Settings, get_settings

__all__ = ["EngineSettings", "get_engine_settings"]

EngineSettings = Settings
get_engine_settings = get_settings
