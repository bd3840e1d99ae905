"""Every setting is documented in docs/configuration.md, and the environment sets them."""

from __future__ import annotations

from pathlib import Path

from m365sync.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"M365SYNC_{name.upper()}" not in text]
    assert missing == []


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("M365SYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("M365SYNC_SECRET_EXPIRY_WARNING_DAYS", "[21, 3]")
    settings = Settings(_env_file=None)
    assert settings.data_dir == tmp_path
    assert settings.secret_expiry_warning_days == (21, 3)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'm365sync.db'}"
