"""Every sync engine setting is documented in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from m365sync.settings import Settings

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_every_engine_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`M365SYNC_{name.upper()}`" not in text]
    assert missing == []


def test_engine_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365SYNC_SYNC_PAGE_SIZE", "250")
    monkeypatch.setenv("M365SYNC_WEBHOOK_URL", "https://sync.contoso.com/webhooks/microsoft")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sync_page_size == 250
    assert settings.webhook_url == "https://sync.contoso.com/webhooks/microsoft"
