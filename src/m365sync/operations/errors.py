"""Errors of operations: every one names the cause and the fix.

M365SyncError
  └── OperationsError
        ├── BackupNotSupported   the database is not a SQLite file (use the server's tools)
        ├── BackupTargetExists   refusing to write over a file
        └── NotABackup           the file to restore is not an m365sync database
"""

from __future__ import annotations

from m365sync.errors import M365SyncError

__all__ = ["BackupNotSupported", "BackupTargetExists", "NotABackup", "OperationsError"]


class OperationsError(M365SyncError):
    status = 422


class BackupNotSupported(OperationsError):
    """Backups of PostgreSQL are PostgreSQL's tools' job."""


class BackupTargetExists(OperationsError):
    status = 409


class NotABackup(OperationsError):
    pass
