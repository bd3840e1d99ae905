"""Run m365sim: in a background thread for tests, or in the foreground for ``m365sim serve``."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from m365sim.app import build_app
from m365sim.ews.auth import CONNECTION_KEY
from m365sim.listener import tcp_listener
from m365sim.state import SimState
from m365sim.tls import TlsFiles, prepare_tls


class _QuietHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol without access logging.

    uvicorn decides per connection from the shared ``uvicorn.access`` logger, which another
    uvicorn server in the same process (``m365sync serve`` runs both) configures; m365sim's
    requests are in its own request log instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False
        self.connection_id = uuid.uuid4().hex

    def on_message_begin(self) -> None:
        # Connection-oriented authentication (NTLM, as IIS does it for EWS) needs to know
        # which requests share a TCP connection; uvicorn's scope doesn't say.
        super().on_message_begin()
        self.scope["extensions"] = {CONNECTION_KEY: {"id": self.connection_id}}


class SimServer:
    """A running m365sim: one HTTPS origin serving Entra ID, Graph and ``/_sim`` control.

    ``url`` is the origin (``https://127.0.0.1:PORT``): the authority host for MSAL
    (``{url}/{tenant}``) and, with ``/v1.0``, the Graph base URL. ``tls.ca_bundle`` is the
    file a client trusts.
    """

    def __init__(
        self,
        state: SimState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | None = None,
    ) -> None:
        self.state = state or SimState()
        self.host = host
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="m365sim-"))
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
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    def authority(self, tenant: str) -> str:
        return f"{self.url}/{tenant}"

    def _config(self, **overrides: Any) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            ssl_certfile=str(self.tls.cert_chain),
            ssl_keyfile=str(self.tls.private_key),
            log_level="warning",
            access_log=False,
            http=_QuietHttpProtocol,
            lifespan="off",
            timeout_graceful_shutdown=1,
            **overrides,
        )

    def serve_forever(self) -> None:
        self._server = uvicorn.Server(self._config())
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> SimServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),  # type: ignore[union-attr]
            name="m365sim",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("m365sim did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
