"""``--server uvicorn``: the same limits and drain, where uvicorn allows them.

uvicorn streams a request body to the application with flow control (it stops reading past 64 KiB
unread), so a body limit in the application holds memory down. ``BodyLimit`` applies it to every
path, Django's included (Django would otherwise spool a whole body to a temporary file first).
The connection cap is uvicorn's ``limit_concurrency`` (503 beyond it), the keep-alive idle timeout
``timeout_keep_alive``. uvicorn has no header or body-idle timeout of its own: ``SlowClientH11Protocol``
adds them (it closes the connection; a 408 could collide with an application already running).
"""

from __future__ import annotations

import logging
import os
import socket

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from eldric_cloud.server.drain import Drain
from eldric_cloud.server.limits import ServerLimits, too_large_body
from eldric_cloud.server.listener import notify_systemd, replace_old_process

logger = logging.getLogger("eldric_cloud.server")


class BodyLimit:
    """ASGI middleware: 413 for a declared or counted body above ``limit``, before the app reads it whole."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        state = {"received": 0, "refused": False, "started": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    if not state["started"]:
                        state["refused"] = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}  # the app stops reading and answers nothing more
            return message

        async def guarded_send(message):
            if state["refused"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send) -> None:
        body = too_large_body(self.limit)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class SlowClientH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with ``ELDRIC_HEADER_TIMEOUT`` and ``ELDRIC_BODY_IDLE_TIMEOUT``."""

    limits: ServerLimits  # set on the subclass run_uvicorn builds

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = None
        self._arm(self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._deadline is None:
            self._arm(self.limits.header_timeout)  # the first bytes of a request on a kept-alive connection
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm(self.limits.body_idle_timeout)  # reset by every piece of the body
        elif state is not h11.IDLE:
            self._disarm()  # the request is in: from here the gateway's own deadlines apply

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _UvicornConnections:
    """The drain's view of uvicorn: its asyncio servers and its connection protocols."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server

    @staticmethod
    def _busy(connection) -> bool:
        cycle = getattr(connection, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def begin_drain(self) -> None:
        for connection in list(self.server.server_state.connections):
            if self._busy(connection):
                connection.shutdown()  # keep-alive off: closed after its response

    def stop_listening(self) -> None:
        for server in self.server.servers:
            server.close()

    def count(self) -> int:
        return len(self.server.server_state.connections)

    def busy(self) -> int:
        return sum(1 for connection in self.server.server_state.connections if self._busy(connection))

    def close_idle(self, idle_for: float) -> None:
        # uvicorn does not say how long a connection has been idle; its keep-alive timeout closes them too.
        for connection in list(self.server.server_state.connections):
            if not self._busy(connection):
                connection.shutdown()

    def close_all(self) -> None:
        for connection in list(self.server.server_state.connections):
            connection.shutdown()


class _EldricUvicornServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, limits: ServerLimits, gateway, replace_pid: int | None) -> None:
        super().__init__(config)
        self.limits = limits
        self.gateway = gateway
        self.replace_pid = replace_pid

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        logger.info("ready: serving (uvicorn, pid %s)", os.getpid())
        notify_systemd("READY=1")
        replace_old_process(self.replace_pid)

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        # uvicorn raises the signal again once it has shut down, which kills the process before the
        # CLI stops the embedded worker and returns its status. We have handled it: no re-raise.
        self._captured_signals.clear()

    async def shutdown(self, sockets=None) -> None:
        logger.info("draining (up to %ss for requests in flight)", self.limits.drain_seconds)
        connections = _UvicornConnections(self)
        await Drain(gateway=self.gateway, connections=connections, limits=self.limits, close_gateway=False).run()
        await super().shutdown(sockets)  # lifespan shutdown: the app's own aclose()


def run_uvicorn(*, sock: socket.socket, limits: ServerLimits, replace_pid: int | None) -> int:
    from eldric_cloud import asgi

    protocol = type("EldricH11Protocol", (SlowClientH11Protocol,), {"limits": limits})
    config = uvicorn.Config(
        BodyLimit(asgi.application, limits.max_body_bytes),
        http=protocol,
        log_level="warning",
        access_log=False,
        lifespan="on",
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=max(1, int(limits.header_timeout)),
        timeout_graceful_shutdown=1,  # what is left after our drain
    )
    server = _EldricUvicornServer(config, limits=limits, gateway=asgi.gateway, replace_pid=replace_pid)
    server.run(sockets=[sock])
    return 0 if server.started else 1
