"""The SQLite database holds every synced email: its file, its write-ahead log and its
directory are readable by the service's user only."""

from __future__ import annotations

import stat
from pathlib import Path

from m365sync.db import database_from_settings, migrate
from m365sync.organizations import service as orgs
from m365sync.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_file_its_log_and_its_directory_are_private(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    database = database_from_settings(settings)
    try:
        migrate(database.engine)
        with database.session() as session:
            orgs.create_organization(session, "Contoso")
        data = settings.data_dir
        assert mode(data) == 0o700
        for name in ("m365sync.db", "m365sync.db-wal", "m365sync.db-shm"):
            assert mode(data / name) == 0o600, name
    finally:
        database.dispose()
