"""Twisted's TCP server transport, writing at the end of the loop turn instead of after an
epoll round trip.

Twisted buffers every ``write`` and asks the reactor to watch the socket for writability
(``addWriter``: an ``epoll_ctl`` and asyncio's selector bookkeeping), writes on the next
turn, then stops watching (another ``epoll_ctl``). A socket is almost always writable, so
for each response chunk (a streamed event, a JSON answer) that is two system calls and the
Python around them for nothing: about a third of the gateway's CPU with thousands of open
streams. Here the first write of a turn schedules one flush with ``call_soon`` instead;
the flush runs the reactor's own write handling (``_readOrWrite``), so errors, closing and
producers behave exactly as before. Only when the kernel's buffer is full (a slow client)
does the transport fall back to watching the socket, as Twisted always does.

Writes made in one turn (headers, then body) still leave in one ``send``.
"""

from __future__ import annotations

from twisted.internet import tcp


class NoDelayServer(tcp.Server):
    """Twisted's transport with Nagle off: a streamed event must not wait for the client's
    delayed ACK of the one before (up to 40 ms)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setTcpNoDelay(True)


class TurnEndServer(NoDelayServer):
    _flush_scheduled = False

    def startWriting(self) -> None:
        reactor = self.reactor
        loop = getattr(reactor, "_asyncioEventloop", None)
        if loop is None or self.TLS or self in reactor._writers:
            super().startWriting()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self.connected:
            return
        # As the reactor does when the socket is writable: doWrite, and its verdict handled.
        self.reactor._readOrWrite(self, False)
        if self.connected and (self._tempDataLen or self.offset < len(self.dataBuffer)):
            super().startWriting()  # the kernel took only part of it: wait until it drains


class NoDelayPort(tcp.Port):
    transport = NoDelayServer


class TurnEndPort(tcp.Port):
    transport = TurnEndServer


def adopt_stream_port(reactor, fd: int, family, factory, *, turn_end_writes: bool = True) -> tcp.Port:
    """``reactor.adoptStreamPort`` with the transports above (TCP only)."""
    port_class = TurnEndPort if turn_end_writes else NoDelayPort
    port = port_class._fromListeningDescriptor(reactor, fd, family, factory)
    port.startListening()
    return port
