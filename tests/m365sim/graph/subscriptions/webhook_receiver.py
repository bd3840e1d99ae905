"""A tiny local webhook receiver: answers Graph's validation handshake and records notifications.

It listens on HTTPS, as Graph requires of a notification URL, with the certificate m365sim
serves itself (issued by m365sim's CA for 127.0.0.1, which m365sim's notification sender
trusts through the session's ``SSL_CERT_FILE``)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from m365sim.server import SimServer


@dataclass
class Receiver:
    """What the receiver saw, and how it should answer.

    ``validation``: "echo" (correct), "error" (500), "wrong" (echoes something else).
    ``fail_next``: statuses to answer the next notifications with before answering 202.
    """

    url: str
    validation: str = "echo"
    fail_next: list[int] = field(default_factory=list)
    validations: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str = "/notify") -> list[dict[str, Any]]:
        with self.lock:
            return [
                n["body"] for n in self.notifications if n["path"] == path and n["status"] < 300
            ]

    def wait(self, count: int, path: str = "/notify", timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} notifications on {path}, got {len(got)}")
            time.sleep(0.02)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if "validationToken" in query:
                token = query["validationToken"][0]
                with receiver.lock:
                    receiver.validations.append({"path": parts.path, "token": token})
                if receiver.validation == "error":
                    self._answer(500, b"", "text/plain")
                else:
                    echo = token if receiver.validation == "echo" else "something else"
                    self._answer(200, echo.encode(), "text/plain; charset=utf-8")
                return
            with receiver.lock:
                status = receiver.fail_next.pop(0) if receiver.fail_next else 202
                receiver.notifications.append(
                    {"path": parts.path, "status": status, "body": json.loads(raw or b"{}")}
                )
            self._answer(status, b"", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def receiver(sim_server: SimServer) -> Iterator[Receiver]:
    found = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sim_server.tls.cert_chain, sim_server.tls.private_key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    found.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
