"""Ctrl+C pressed while a web server starts (after its banner, before uvicorn listens for
signals) stops it once it has started: never lost, never cutting its start-up short."""

from __future__ import annotations

import signal
import socket
from typing import Any

import pytest
import uvicorn

from m365sync.workers.process import HeldStop


def test_ctrl_c_before_the_server_runs_stops_it_after_start_up_and_shutdown() -> None:
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                events.append("started")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                events.append("stopped")
                await send({"type": "lifespan.shutdown.complete"})
                return

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    # Ctrl+C as a fresh process has it (an in-process Celery worker earlier in the session
    # may have left its own handler).
    earlier = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), HeldStop() as stop:
            # Where Python's own handler would raise (and a garbage collector's callback
            # would swallow it), the signal is only noted...
            signal.raise_signal(signal.SIGINT)
            events.append("after Ctrl+C")
            # ...and the server, once started, stops by itself.
            stop.run(uvicorn.Server(uvicorn.Config(app, log_level="warning")), [listener])
            events.append("server returned")
        # Leaving the block, the held Ctrl+C ends the command as Ctrl+C does.
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, earlier)
        listener.close()
    assert events == ["after Ctrl+C", "started", "stopped", "server returned"]


def test_nothing_held_leaves_the_signals_as_they_were() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with HeldStop() as stop:
        assert signal.getsignal(signal.SIGTERM) != before
    assert stop.held == []
    assert signal.getsignal(signal.SIGTERM) == before
