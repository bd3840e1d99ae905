"""What a listening socket gives the connections asyncio accepts from it."""

from __future__ import annotations

import asyncio
import socket


def nagle_off_on_accepted_connections(listener: socket.socket) -> bool:
    """Whether a connection asyncio's own event loop accepts from ``listener`` (bound, not
    yet listening) has Nagle's algorithm off (``TCP_NODELAY``), as uvicorn's asyncio loop
    serves it: with Nagle on, an answer written as headers then body waits for the
    client's delayed ACK (about 40 ms) before its body."""

    async def accept_one() -> bool:
        accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
            writer.close()

        listener.listen()
        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            try:
                return await asyncio.wait_for(accepted, 10)
            finally:
                writer.close()

    return asyncio.run(accept_one())
