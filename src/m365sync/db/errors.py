"""The database's own failures, phrased for the person who sees them.

::

    M365SyncError
    └── DatabaseBusy              503: SQLite stayed locked by another writer too long
"""

from __future__ import annotations

from m365sync.errors import M365SyncError

__all__ = ["DatabaseBusy"]


class DatabaseBusy(M365SyncError):
    """SQLite lets one process write at a time; another kept the database locked longer
    than the busy timeout. Nothing was changed by the operation that got this."""

    status = 503

    def __init__(self, path: str, waited_seconds: float) -> None:
        super().__init__(
            f"The database {path} is busy: another m365sync process (the web server, a sync, "
            f"a command) kept it locked for writing for more than {waited_seconds:.0f} "
            "seconds, so nothing was changed.",
            fix="Try again in a moment. To run several m365sync processes that write at once, "
            "use PostgreSQL (M365SYNC_DATABASE_URL, see docs/configuration.md): SQLite allows "
            "one writer at a time.",
        )
        self.path = path
