"""The listening socket m365sim and sfsim serve on."""

from __future__ import annotations

import socket

__all__ = ["tcp_listener"]


def tcp_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` for uvicorn to listen on (port 0: any free one).

    Its protocol is named (``IPPROTO_TCP``), not left 0: asyncio turns Nagle's algorithm off
    (``TCP_NODELAY``) only on connections accepted from a socket that says TCP. With it on,
    uvicorn's headers and body go out as two writes and every small answer waited about
    40 ms for the client's delayed ACK in between, which no Microsoft or Salesforce
    server does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    return listener
