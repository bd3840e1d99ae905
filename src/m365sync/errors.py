"""The root of every error m365sync raises on purpose.

::

    M365SyncError                 root; ``status`` (HTTP) and a message that names cause and fix
    ├── Unauthorized              401 (missing or unknown API token)
    ├── NotFound                  404
    ├── Forbidden                 403 (another organization's data, or a non-admin)
    ├── ValidationFailed          422 (bad input; nothing was changed)
    ├── Conflict                  409
    └── (per package)             connections.errors, microsoft.errors, scheduling.errors

Expected errors carry a status and never surface as a 500. Messages are written for the
person who sees them: what went wrong and how to fix it.
"""

from __future__ import annotations

from typing import ClassVar


class M365SyncError(Exception):
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message} {fix}")


class Unauthorized(M365SyncError):
    status = 401


class NotFound(M365SyncError):
    status = 404


class Forbidden(M365SyncError):
    status = 403


class ValidationFailed(M365SyncError):
    status = 422


class Conflict(M365SyncError):
    status = 409
