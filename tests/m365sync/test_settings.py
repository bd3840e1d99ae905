"""Every setting is documented in docs/configuration.md, and the environment sets them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from m365sim.server import SimServer
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


@pytest.mark.parametrize("named_by_ssl_cert_file", [True, False])
def test_the_ca_bundle_is_trusted_whether_or_not_ssl_cert_file_names_it_too(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch, named_by_ssl_cert_file: bool
) -> None:
    """The bundle is loaded once when ``SSL_CERT_FILE`` names it too (as on hosts that set
    both to one file), and trusted either way."""
    bundle = sim.tls.ca_bundle
    if named_by_ssl_cert_file:
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    settings = Settings(_env_file=None, ca_bundle=bundle)

    with httpx.Client(verify=settings.ssl_context) as client:
        assert client.get(f"{sim.url}/_sim/config").status_code == 200
