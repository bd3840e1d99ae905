"""The CLI as a script uses it: ``m365sync`` runs in-process against m365sim, on a fresh
SQLite data directory; each call returns the exit code, stdout and stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from m365sync.settings import get_settings
from support.cli_runner import RunCli, cli_runner
from support.demo import SERVICE_APP_ID, SERVICE_SECRET


@pytest.fixture
def m365sync(sim, tmp_path, monkeypatch, capsys) -> Iterator[RunCli]:
    env = {
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_AUTHORITY_HOST": sim.url,
        "M365SYNC_GRAPH_URL": sim.graph_url,
        "M365SYNC_CA_BUNDLE": str(sim.tls.ca_bundle),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
        "M365SYNC_GRAPH_BACKOFF_MAX_SECONDS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("M365SYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("M365SYNC_SECRET_KEY", raising=False)

    yield cli_runner(capsys)
    get_settings.cache_clear()


@pytest.fixture
def add_service_account(m365sync: RunCli) -> Callable[[str], tuple[int, str, str]]:
    """``m365sync service-accounts add`` for Contoso with the demo app's secret."""

    def add(test_mailbox: str) -> tuple[int, str, str]:
        return m365sync(
            "service-accounts",
            "add",
            "-o",
            "contoso",
            "--client-id",
            SERVICE_APP_ID,
            "--secret",
            SERVICE_SECRET,
            "--test-mailbox",
            test_mailbox,
        )

    return add
