"""Whether the local services some tests need are up (Redis for the Celery workers)."""

from __future__ import annotations

import socket

__all__ = ["redis_up"]


def redis_up() -> bool:
    """Redis answers on its standard loopback port."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False
