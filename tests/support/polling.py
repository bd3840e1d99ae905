"""Waiting for something another thread, process or server does, without timing it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    *,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that. After
    ``timeout`` seconds, fail with ``message`` (what never happened).

    The timeout only bounds a test that would otherwise hang; nothing asserts on how long
    the wait took."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)
