"""Run sfsim: in a background thread for tests, or in the foreground for ``sfsim serve``.

TLS comes from the project's CA machinery (``m365sim.tls``): a CA kept in the data
directory issues the server certificate, and ``ca-bundle.pem`` there is the system's CAs
plus that CA (plus whatever bundle ``SSL_CERT_FILE`` already names, so one bundle can
trust both emulators), and so do the listening socket (``m365sim.listener``) and the
request log (``m365sim.request_log``). sfsim imports nothing else from m365sim and nothing
from m365sync.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from m365sim.listener import tcp_listener
from m365sim.tls import TlsFiles, prepare_tls
from sfsim.app import build_app
from sfsim.state import SfState


class _QuietHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol without access logging (sfsim keeps its own request log)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class SfServer:
    """A running sfsim: one HTTPS origin serving OAuth, the REST API and ``/_sim``.

    ``url`` (``https://127.0.0.1:PORT``) is both the org's My Domain login URL and its
    ``instance_url``; ``tls.ca_bundle`` is the file a client trusts.
    """

    def __init__(
        self,
        state: SfState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | None = None,
    ) -> None:
        self.state = state or SfState()
        self.host = host
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="sfsim-"))
        self.tls: TlsFiles = prepare_tls(self.data_dir)
        self._socket = tcp_listener(host, port)
        self.port: int = self._socket.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"https://{shown_host}:{self.port}"
        self.state.base_url = self.url
        self.app = build_app(self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def token_url(self) -> str:
        return f"{self.url}/services/oauth2/token"

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            ssl_certfile=str(self.tls.cert_chain),
            ssl_keyfile=str(self.tls.private_key),
            log_level="warning",
            access_log=False,
            http=_QuietHttpProtocol,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )

    def serve_forever(self) -> None:
        self._server = uvicorn.Server(self._config())
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> SfServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
        server = self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[self._socket])),
            name="sfsim",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sfsim did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> SfServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
