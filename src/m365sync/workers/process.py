"""Process-level set-up for long-running m365sync processes (``serve``, ``web``, Celery
workers, ``m365sync sync``)."""

from __future__ import annotations

import gc
import signal
import socket
import threading
from types import FrameType
from typing import Any

__all__ = ["HeldStop", "tune_garbage_collector"]

# Container objects allocated (net) between two collections of the youngest generation;
# CPython's default is 700. Then every 20th young collection also collects the middle
# generation, and every 20th of those may collect everything.
YOUNG_COLLECTION_THRESHOLD = 50_000
OLDER_COLLECTION_THRESHOLDS = (20, 20)


def tune_garbage_collector(*, collect: bool = True) -> None:
    """Set the cyclic garbage collector up for a process that syncs mailboxes.

    Why: a first Email Sync parses pages of 1,000 messages (about 15,000 dicts and lists
    each) that stay alive while the page is prepared and stored. Measured on a
    50,000-message first sync:

    - Without ``gc.freeze()``, each full collection walked the whole start-up heap
      (modules, classes, SQLAlchemy and MSAL internals), which never becomes garbage: 13
      full collections, about 1.1 s. Frozen once, after imports and configuration (as
      CPython's documentation advises for long-running servers), the collector skips it.
    - With CPython's default thresholds (700, 10, 10) the live pages were still walked
      again and again and promoted: about 1,450 young, 130 middle and 13 full collections,
      0.8-0.9 s. With young collections every 50,000 allocations: 34, 3 and 2, about
      0.2 s, and the same peak memory. (Reference counting frees almost everything; the
      cycles it can't free, such as an httpx response and its stream, are broken where
      they hold much memory: see ``GraphClient.request``.)

    Call it once, before the process starts working. ``collect=False`` skips the collection
    before the freeze (about 70 ms after a command's imports): for a command that ends with
    its one job, the little start-up garbage it then keeps costs nothing.
    """
    if collect:
        gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *OLDER_COLLECTION_THRESHOLDS)
    gc.enable()  # the command line keeps it off while a command loads (``m365sync.cli.main``)


class HeldStop:
    """Ctrl+C (SIGINT) and SIGTERM held from a web server's banner until it runs.

    Python's own Ctrl+C raises ``KeyboardInterrupt`` at whatever line is running, and a line
    inside a garbage collector's callback swallows it ("Exception ignored in ..."): pressed
    just after the banner, while the collector is tuned and the server starts, Ctrl+C could
    be lost and the server run on. Within ``with HeldStop() as stop:`` the signal is only
    noted; ``stop.run(server, sockets)`` starts the uvicorn ``server``, which takes the
    signals over while it runs, and stops it as soon as it has started when one came
    before (its start-up and shutdown both run). Leaving the block raises the signals noted
    again, as uvicorn itself does after a shutdown they caused: Ctrl+C ends the command as
    Ctrl+C does, after its clean-up."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.held: list[int] = []
        self._server: Any = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> HeldStop:
        # Signal handlers can only be set from the main thread.
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._hold) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        for sig in reversed(self.held):
            signal.raise_signal(sig)

    def _hold(self, signum: int, _frame: FrameType | None) -> None:
        self.held.append(signum)
        if self._server is not None:
            self._server.should_exit = True

    def run(self, server: Any, sockets: list[socket.socket]) -> None:
        """``server.run(sockets=sockets)``, told to stop at once if a signal came first."""
        self._server = server
        if self.held:
            server.should_exit = True
        server.run(sockets=sockets)
