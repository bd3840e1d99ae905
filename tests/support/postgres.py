"""Where the tests find PostgreSQL.

``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` unless
``M365SYNC_TEST_POSTGRES_URL`` says otherwise; the fixtures make a throwaway database on it.
"""

from __future__ import annotations

import os

__all__ = ["POSTGRES_URL"]

POSTGRES_URL = os.environ.get(
    "M365SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
