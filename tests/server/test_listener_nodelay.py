"""The listening socket says it is TCP, so the connections it accepts have Nagle off: without
that, uvicorn's headers and body left as two segments and the body waited for the client's
delayed ACK (40 ms on every answer)."""

from __future__ import annotations

import asyncio
import socket

from eldric_cloud.server.listener import bound_socket, start_listening


async def test_connections_accepted_from_the_bound_socket_have_nagle_off():
    sock = bound_socket("127.0.0.1", 0, reuse_port=False)
    start_listening(sock)
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    def connected(reader, writer) -> None:
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(connected, sock=sock)  # as uvicorn serves a given socket
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
