"""The features a sync unit runs, as plain names, importable without the database layer.

``SyncFeature`` is the ``feature`` column of ``SyncUnit``; everything that names a feature
imports it from here, so the command line can offer ``--feature email|calendar|tasks``
without loading SQLAlchemy when it starts.
"""

from __future__ import annotations

import enum

__all__ = ["SyncFeature"]


class SyncFeature(enum.StrEnum):
    EMAIL = "email"
    CALENDAR = "calendar"
    TASKS = "tasks"
