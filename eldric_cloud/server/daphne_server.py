"""Daphne, run by eldric-cloudd: our protocol factory, our listening socket, our SIGTERM.

``daphne.server.Server.run`` builds its own factory and listens on endpoint strings, and Twisted's
signal handlers stop the reactor at once on SIGTERM. ``EldricDaphneServer.run`` does the same set-up
with ``EldricHTTPFactory``, adopts a socket we bound (SO_REUSEPORT), starts the gateway before
the reactor runs, and drains on SIGTERM/SIGINT.
"""

from daphne.server import Server  # isort:skip  (installs Twisted's asyncio reactor first)

import asyncio
import logging
import os
import signal
import socket

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from twisted.internet import defer, reactor
from twisted.logger import formatEvent, globalLogBeginner

from eldric_cloud.server.drain import Drain
from eldric_cloud.server.limits import ServerLimits
from eldric_cloud.server.listener import notify_systemd, replace_old_process, start_listening, stop_listening
from eldric_cloud.server.protocol import EldricHTTPFactory
from eldric_cloud.server.transport import adopt_stream_port

logger = logging.getLogger("eldric_cloud.server")


class _DaphneConnections:
    """The drain's view of Daphne: our factory's channels and the Twisted listening port."""

    def __init__(self, factory: EldricHTTPFactory) -> None:
        self.factory = factory
        self.port = None

    def begin_drain(self) -> None:
        self.factory.begin_drain()

    def stop_listening(self) -> None:
        if self.port is not None:
            stop_listening(self.port)
            self.port = None

    def count(self) -> int:
        return len(self.factory.channels)

    def busy(self) -> int:
        return self.factory.busy()

    def close_idle(self, idle_for: float) -> None:
        self.factory.close_idle(idle_for)

    def close_all(self) -> None:
        self.factory.close_all()


class EldricDaphneServer(Server):
    def __init__(
        self,
        application,
        *,
        sock: socket.socket,
        limits: ServerLimits,
        gateway,
        replace_pid: int | None = None,
        application_close_timeout: float = 10,
    ) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(
            application,
            endpoints=[f"tcp:port={port}:interface={host}"],  # only for Daphne's own checks and logs
            signal_handlers=False,
            verbosity=0,
            http_timeout=None,  # streams may last; the drain and the gateway's deadlines bound them
            application_close_timeout=application_close_timeout,
        )
        self.sock = sock
        self.limits = limits
        self.gateway = gateway
        self.replace_pid = replace_pid
        self.exit_code = 0
        self.drain: Drain | None = None

    def run(self) -> None:
        # As Server.run, with our factory and without endpoint strings or Twisted's signal handlers.
        self.connections = {}
        self.http_factory = EldricHTTPFactory(self, self.limits)
        self.ws_factory = WebSocketFactory(self, server=self.server_name)
        self.ws_factory.protocol = _WebSocketProtocol
        self.ws_factory.setProtocolOptions(
            autoPingTimeout=self.ping_timeout,
            allowNullOrigin=True,
            openHandshakeTimeout=self.websocket_handshake_timeout,
            maxMessagePayloadSize=self.websocket_max_message_size,
            maxFramePayloadSize=self.websocket_max_frame_size,
        )
        globalLogBeginner.beginLoggingTo([_log_twisted_errors], redirectStandardIO=False, discardBuffer=True)
        reactor.callLater(1, self.application_checker)
        reactor.callLater(2, self.timeout_checker)
        asyncio.set_event_loop(reactor._asyncioEventloop)
        reactor.addSystemEventTrigger("before", "shutdown", self.kill_all_applications)
        # Routing snapshot, poller, recorder: before the reactor runs, so before the first request. It
        # reads the database, which Django refuses inside a running event loop.
        self.gateway.start()
        reactor.callWhenRunning(self._listen)
        reactor.run(installSignalHandlers=False)

    def kill_all_applications(self):
        """As Daphne's, but a connection whose application never ran (refused, or timed out before
        its headers ended) has no "application_instance"; Daphne's raises KeyError for it."""
        pending = [
            instance
            for details in self.connections.values()
            if (instance := details.get("application_instance")) is not None and not instance.done()
        ]
        for instance in pending:
            instance.cancel()
        if pending:
            logger.info("cancelled %d application instances at exit", len(pending))
        waiting = defer.Deferred.fromFuture(asyncio.gather(*pending, return_exceptions=True))
        waiting.addErrback(lambda _: None)
        return waiting

    def _listen(self) -> None:
        loop = asyncio.get_event_loop()
        connections = _DaphneConnections(self.http_factory)
        self.drain = Drain(gateway=self.gateway, connections=connections, limits=self.limits)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        start_listening(self.sock)
        connections.port = adopt_stream_port(
            reactor,
            self.sock.fileno(),
            self.sock.family,
            self.http_factory,
            turn_end_writes=settings.ELDRIC_TURN_END_WRITES,
        )
        self.sock.close()  # Twisted holds its own descriptor of the socket now
        host, port = connections.port.getHost().host, connections.port.getHost().port
        logger.info("ready: serving http://%s:%s (daphne, pid %s)", host, port, os.getpid())
        # A loop callback: the reactor calls this before its asyncio loop counts as running.
        loop.call_soon(self.gateway.serving_started)
        notify_systemd("READY=1")
        replace_old_process(self.replace_pid)

    def _on_signal(self, signum: int) -> None:
        first = self.drain.task is None
        self.drain.request(signal.Signals(signum).name)
        if first:
            self.drain.task.add_done_callback(self._drained)

    def _drained(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("drain failed", exc_info=task.exception())
            self.exit_code = 1
        if reactor.running:
            reactor.stop()


def _log_twisted_errors(event: dict) -> None:
    """Twisted's log carries the exceptions raised in protocol callbacks; Daphne drops it all."""
    failure = event.get("log_failure")
    if failure is None and not event.get("isError"):
        return  # "Timing out client" and the like
    detail = failure.getTraceback() if failure is not None else ""
    logger.error("twisted: %s\n%s", formatEvent(event), detail)


class _WebSocketProtocol(WebSocketProtocol):
    """Daphne's, minus a traceback: a handshake refused before ``onConnect`` (a garbage
    ``Sec-WebSocket-Key``) closes a protocol that never learnt its server."""

    def onClose(self, wasClean, code, reason):
        if hasattr(self, "server"):
            super().onClose(wasClean, code, reason)
