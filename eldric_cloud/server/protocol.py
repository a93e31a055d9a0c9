"""Daphne's HTTP/1.1 protocol with limits that act as bytes arrive.

Twisted reads a whole request body (into memory or a temporary file) before Daphne calls the
application, so a limit in the application comes too late: a 1 GiB body is read whole first.
Here the channel refuses a declared ``Content-Length`` above ``ELDRIC_MAX_BODY_BYTES`` as soon as
the headers end, and counts chunked bodies as they are decoded. It also enforces a header
deadline, a body-idle timeout and a per-process connection cap, and closes keep-alive
connections while the server drains.

The two deadlines are not timers: each channel keeps the moment its current phase must end,
and one sweep per factory (``DeadlineSweep``, a few times a second) closes the channels past
theirs. A timer per phase would cost three scheduler operations on every request.

Written against Twisted 26.10 and Daphne 4.2 (``HTTPChannel`` hooks ``allHeadersReceived``,
``allContentReceived``, ``requestDone``, ``_send100Continue``, ``_respondToBadRequestAndDisconnect``);
tests/server exercises each of them through a real process.
"""

from __future__ import annotations

import io
import logging
import time

from daphne.http_protocol import HTTPFactory, WebRequest
from twisted.internet.task import LoopingCall
from twisted.web import http

from eldric_cloud.server.limits import ServerLimits, error_body, raw_response, too_large_body

logger = logging.getLogger("eldric_cloud.server")

CAP_LOG_INTERVAL = 10.0  # seconds between two "connection cap reached" lines


class _Phase:
    IDLE = "idle"  # waiting for a request line; nothing of it received yet
    HEADERS = "headers"
    BODY = "body"
    HANDLING = "handling"  # the application has the request
    REFUSED = "refused"  # an error was written; what still arrives is dropped


class EldricRequest(WebRequest):
    """Daphne's request, counting body bytes as they are decoded and closing keep-alive in a drain."""

    def __init__(self, *args, **kwargs) -> None:
        self.body_bytes = 0
        super().__init__(*args, **kwargs)
        # Twisted parses form bodies (and every POST's Content-Type, through the email package)
        # into ``args``; Daphne hands the application the raw body and never reads them.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length):
        if self.channel.refusing:
            self.content = io.BytesIO()  # refused before any byte arrives: no temporary file
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        channel = self.channel
        if channel is None or channel.refusing:
            return
        self.body_bytes += len(data)
        limit = channel.limits.max_body_bytes
        if self.body_bytes > limit:
            self.content.close()  # frees what was buffered at once
            self.content = io.BytesIO()
            channel.refuse(413, too_large_body(limit))
            return
        self.content.write(data)

    def handle_reply(self, message):
        channel = self.channel
        if message["type"] == "http.response.start" and channel is not None and channel.factory.draining:
            # Keep-alive clients reconnect, and so reach a process that is not going away.
            channel.persistent = False
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"connection" for name, _ in headers):
                headers.append((b"connection", b"close"))
            message = {**message, "headers": headers}
        super().handle_reply(message)

    def basic_error(self, status, status_text, body):
        """Daphne's server-level errors (bad header, bad path), in OpenAI's shape instead of HTML."""
        kind = "server_error" if status >= 500 else "invalid_request_error"
        payload = error_body(status, body, None, kind=kind)
        self.handle_reply(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        self.handle_reply({"type": "http.response.body", "body": payload})


class EldricHTTPChannel(http.HTTPChannel):
    """One client connection: deadlines per phase, refusals written straight to the transport."""

    def __init__(self, limits: ServerLimits) -> None:
        super().__init__()
        self.limits = limits
        self.phase = _Phase.IDLE
        self.phase_since = time.monotonic()
        # When the current phase must end (monotonic seconds), and what happens then.
        self.deadline: float | None = None
        self._on_deadline = None
        self._timer = None  # the linger and close timers (rare, so real timers)

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self.phase_since = time.monotonic()

    @property
    def refusing(self) -> bool:
        return self.phase == _Phase.REFUSED

    # --- deadlines (see DeadlineSweep) and timers -------------------------------------------

    def _arm(self, seconds: float, action) -> None:
        if seconds and seconds > 0:
            self.deadline = time.monotonic() + seconds
            self._on_deadline = action
        else:
            self._disarm()

    def _disarm(self) -> None:
        self.deadline = None
        self._on_deadline = None

    def deadline_passed(self) -> None:
        action, self._on_deadline, self.deadline = self._on_deadline, None, None
        if action is not None:
            action()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _header_timeout(self) -> None:
        if self.phase == _Phase.IDLE:
            self.loseConnection()  # an idle keep-alive connection: nothing to answer
        else:
            self.refuse(408, error_body(408, "request headers not received in time", "request_timeout"))

    def _body_timeout(self) -> None:
        self.refuse(408, error_body(408, "request body stalled", "request_timeout"))

    # --- Twisted's hooks --------------------------------------------------------------------

    def connectionMade(self):
        super().connectionMade()
        self._arm(self.limits.header_timeout, self._header_timeout)

    def dataReceived(self, data):
        phase = self.phase
        if phase == _Phase.REFUSED:
            return
        if phase == _Phase.IDLE:
            # A fresh deadline for the headers, so idle time before them does not count twice.
            self._enter(_Phase.HEADERS)
            self._arm(self.limits.header_timeout, self._header_timeout)
        elif phase == _Phase.BODY and self.deadline is not None:
            self.deadline = time.monotonic() + self.limits.body_idle_timeout
        super().dataReceived(data)

    def rawDataReceived(self, data):
        if self.phase != _Phase.REFUSED:
            super().rawDataReceived(data)

    def lineReceived(self, line):
        # After a refusal the connection stays open for reading (see refuse()), so LineReceiver
        # goes on handing us lines of a request we have answered already.
        if self.phase != _Phase.REFUSED:
            super().lineReceived(line)

    def lineLengthExceeded(self, line):
        # LineReceiver would close without a word; one header line is longer than all headers may be.
        self.refuse(431, error_body(431, "request header too large", "request_header_too_large"))

    def allHeadersReceived(self):
        self._disarm()
        declared = self.length
        too_large = declared is not None and declared > self.limits.max_body_bytes
        if too_large:
            self.phase = _Phase.REFUSED  # before super(): no 100 Continue, no temporary file
        super().allHeadersReceived()
        if too_large:
            self._enter(_Phase.BODY)
            self.refuse(413, too_large_body(self.limits.max_body_bytes))
        elif declared != 0:
            self._enter(_Phase.BODY)
            self._arm(self.limits.body_idle_timeout, self._body_timeout)

    def _send100Continue(self):
        if self.phase != _Phase.REFUSED:
            super()._send100Continue()

    def allContentReceived(self):
        if self.phase == _Phase.REFUSED:
            return  # a chunked body's end, after its 413
        self._disarm()
        self._enter(_Phase.HANDLING)
        super().allContentReceived()

    def requestDone(self, request):
        # Armed first: super() may go straight on to a pipelined request, which cancels it again.
        self._enter(_Phase.IDLE)
        self._arm(self.limits.header_timeout, self._header_timeout)
        super().requestDone(request)

    def _maybeChooseTransferDecoder(self, header, data):
        # Twisted takes "Transfer-Encoding: identity" as if the header were absent, so a request
        # framed by it beside "chunked" or a Content-Length is read differently by a proxy in
        # front: smuggling. Only a lone "chunked" is a framing we accept (RFC 9112 §6.1: 400).
        if header == b"Transfer-Encoding" and data.strip().lower() != b"chunked":
            return self._failChooseTransferDecoder()
        return super()._maybeChooseTransferDecoder(header, data)

    def _respondToBadRequestAndDisconnect(self):
        if self.phase == _Phase.REFUSED:
            return
        self.refuse(400, error_body(400, "malformed HTTP request", "bad_request"))

    def connectionLost(self, reason):
        self._disarm()
        self._cancel_timer()
        self.factory.channel_closed(self)
        super().connectionLost(reason)

    # --- refusals and closing ---------------------------------------------------------------

    def refuse(self, status: int, body: bytes) -> None:
        """Answer ``status`` now, then read and drop the rest for a while so the client can read it.

        Closing at once, with unread bytes in the receive buffer, would make the kernel send a
        reset, and the client could lose the answer; so the write side is closed (FIN) and
        incoming bytes are dropped until the client closes or ``ELDRIC_LINGER_SECONDS`` pass.
        """
        if self.phase == _Phase.REFUSED and self._timer is not None:
            return
        self._enter(_Phase.REFUSED)
        self._disarm()
        self._cancel_timer()
        transport = self.transport
        if transport is None:
            return
        self._networkProducer.unregisterProducer()
        transport.write(raw_response(status, body))
        if hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
            transport.resumeProducing()
            self._timer = self.callLater(self.limits.linger_seconds, transport.abortConnection)
        else:
            transport.loseConnection()

    def idle_for(self) -> float:
        """Seconds this connection has given a drain nothing to wait for (0 while a request is under way).

        An idle keep-alive connection, one whose request headers are still dribbling in, and one
        already refused, all count as idle: a drain closes them rather than wait for their timeouts.
        """
        if self.phase == _Phase.REFUSED:
            return float("inf")
        if self.phase in (_Phase.IDLE, _Phase.HEADERS):
            return time.monotonic() - self.phase_since
        return 0.0

    def close(self, abort_after: float) -> None:
        """Close now; reset it if the client does not read what is still buffered."""
        transport = self.transport
        if transport is None:
            return
        self.loseConnection()
        self._disarm()
        self._cancel_timer()
        self._timer = self.callLater(abort_after, transport.abortConnection)


def sweep_interval(limits: ServerLimits) -> float:
    """How often deadlines are checked: a quarter of the shortest, between 50 ms and 1 s, so a
    deadline is kept to within a quarter of itself."""
    shortest = min((t for t in (limits.header_timeout, limits.body_idle_timeout) if t and t > 0), default=4.0)
    return min(1.0, max(0.05, shortest / 4))


class EldricHTTPFactory(HTTPFactory):
    """Builds our channels and keeps the set of open ones: the cap, and what a drain waits for."""

    def __init__(self, server, limits: ServerLimits) -> None:
        super().__init__(server)
        self.limits = limits
        self.channels: set[EldricHTTPChannel] = set()
        self.draining = False
        self._cap_refused = 0
        self._cap_logged_at: float | None = None
        self._sweep: LoopingCall | None = None

    def buildProtocol(self, addr):
        if len(self.channels) >= self.limits.max_connections:
            self._note_cap_reached()
            return None  # Twisted closes the accepted socket at once
        channel = EldricHTTPChannel(self.limits)
        channel.factory = self
        channel.requestFactory = EldricRequest
        channel.callLater = self.reactor.callLater
        channel.timeOut = None  # Twisted's 12-hour idle timer; ours are per phase
        self.channels.add(channel)
        if self._sweep is None:
            self._start_sweep()
        return channel

    def _start_sweep(self) -> None:
        self._sweep = LoopingCall(self.sweep_deadlines)
        self._sweep.clock = self.reactor
        self._sweep.start(sweep_interval(self.limits), now=False)

    def sweep_deadlines(self) -> None:
        now = time.monotonic()
        for channel in [c for c in self.channels if c.deadline is not None and c.deadline <= now]:
            try:
                channel.deadline_passed()
            except Exception:  # one broken connection must not stop the sweep for the others
                logger.exception("closing a connection past its deadline failed")

    def channel_closed(self, channel: EldricHTTPChannel) -> None:
        self.channels.discard(channel)

    def log(self, request):
        """No access log: nothing reads it, and formatting it costs every request."""

    def _note_cap_reached(self) -> None:
        self._cap_refused += 1
        now = time.monotonic()
        if self._cap_logged_at is not None and now - self._cap_logged_at < CAP_LOG_INTERVAL:
            return
        logger.warning(
            "connection cap reached: %d open connections (ELDRIC_MAX_CLIENT_CONNECTIONS); "
            "closing new connections at once (%d refused since the last report)",
            len(self.channels),
            self._cap_refused,
        )
        self._cap_logged_at = now
        self._cap_refused = 0

    # --- drain ------------------------------------------------------------------------------

    def busy(self) -> int:
        """Connections with a request being received or handled."""
        return sum(1 for channel in self.channels if channel.idle_for() == 0)

    def begin_drain(self) -> None:
        self.draining = True
        for channel in self.channels:
            if channel.requests:
                channel.persistent = False  # closed once its current response is done

    def close_idle(self, idle_for: float) -> None:
        for channel in list(self.channels):
            if channel.idle_for() >= idle_for:
                channel.close(abort_after=1.0)

    def close_all(self) -> None:
        for channel in list(self.channels):
            channel.close(abort_after=1.0)
