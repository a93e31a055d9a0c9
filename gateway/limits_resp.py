"""A minimal pipelined Redis client for the limiter's two scripts: one socket, RESP2.

Why not ``redis.asyncio``: on the hot path its per-call machinery (connection pool, command
objects, retry and script wrappers) cost about 120 µs per script call here, against about
40 µs for the same EVALSHA over a bare socket, and the issue allows the hot path 300 µs in
all. This client writes each command at once and matches replies to callers in order
(Redis answers a connection's commands in the order they came), so any number of requests
share the one connection without waiting for each other, and a caller that does not need the
reply (a request's end) pays for the write only.

Only what the limiter needs: ``redis://``, ``rediss://`` and ``unix://`` URLs (user, password,
database),
``EVALSHA`` with the scripts loaded at connect. Any error closes the connection; the next call
opens a new one (bounded by the timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections import deque
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

CRLF = b"\r\n"
# A reply nobody waits for (the end of a request): parsed and dropped, errors logged.
DISCARD = None
# A command whose reply nobody waits for is held this long (seconds) to leave in the same write as
# the next one: at low concurrency a request's end then rides along with the next request's start.
LINGER = 0.002


class RedisReplyError(Exception):
    """Redis answered with an error (``-ERR ...``)."""


class RespConnectionError(ConnectionError):
    pass


def bulk(*parts) -> bytes:
    """Parts of a command as RESP bulk strings (without the array header)."""
    out = []
    append = out.append
    for part in parts:
        data = part if part.__class__ is bytes else str(part).encode()
        append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def pack(*parts) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(parts) + bulk(*parts)


def pack_head(total: int, *parts) -> bytes:
    """The start of a command of ``total`` parts, to be completed with ``bulk(...)`` of the rest:
    what does not change between calls is packed once."""
    return b"*%d\r\n" % total + bulk(*parts)


class _Incomplete(Exception):
    pass


def _parse(buffer: bytearray, pos: int):
    """One reply from ``buffer`` at ``pos``: (value, next position); ``_Incomplete`` when it
    has not all arrived yet."""
    end = buffer.find(CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind = buffer[pos]
    line = bytes(buffer[pos + 1 : end])
    pos = end + 2
    if kind == 0x2B:  # + simple string
        return line, pos
    if kind == 0x2D:  # - error
        return RedisReplyError(line.decode(errors="replace")), pos
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x24:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if len(buffer) < pos + size + 2:
            raise _Incomplete
        return bytes(buffer[pos : pos + size]), pos + size + 2
    if kind == 0x2A:  # * array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _parse(buffer, pos)
            items.append(item)
        return items, pos
    raise RespConnectionError(f"unexpected reply type {chr(kind)!r} from Redis")


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: RespClient) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.waiting: deque[asyncio.Future | None] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        # Commands held back (request ends), to leave together with the next one.
        self.outgoing: list[bytes] = []
        self.loop = asyncio.get_running_loop()
        self._flush_soon = None
        self._flush_later = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        pos = 0
        try:
            while pos < len(buffer):
                value, pos = _parse(buffer, pos)
                waiter = self.waiting.popleft() if self.waiting else DISCARD
                if waiter is DISCARD:
                    if isinstance(value, RedisReplyError):
                        self.owner.background_error(value)
                elif not waiter.done():
                    waiter.set_result(value)
        except _Incomplete:
            pass
        except (RespConnectionError, ValueError) as exc:
            self.fail(RespConnectionError(f"unreadable reply from Redis: {exc}"))
            return
        del buffer[:pos]

    def connection_lost(self, exc) -> None:
        self.fail(RespConnectionError(f"connection to Redis lost: {exc}" if exc else "connection to Redis closed"))

    def fail(self, exc: Exception) -> None:
        self.closed = True
        while self.waiting:
            waiter = self.waiting.popleft()
            if waiter is not DISCARD and not waiter.done():
                waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes, waiter: asyncio.Future | None) -> None:
        """Queue a command: it leaves at the end of this turn of the loop when someone waits for
        its reply, else within ``LINGER`` (with the next command: one write, one system call)."""
        self.waiting.append(waiter)
        self.outgoing.append(data)
        if waiter is not DISCARD:
            # Someone waits: out at the end of this turn of the loop, with whatever else was sent
            # in it (under load several requests' starts share one write) and what lingered.
            if self._flush_soon is None:
                self._flush_soon = self.loop.call_soon(self._write)
        elif self._flush_soon is None and self._flush_later is None:
            self._flush_later = self.loop.call_later(LINGER, self._write)

    @property
    def held(self) -> bool:
        return bool(self.outgoing)

    def _write(self) -> None:
        if self._flush_later is not None:
            self._flush_later.cancel()
        self._flush_soon = self._flush_later = None
        outgoing, self.outgoing = self.outgoing, []
        if outgoing and not self.closed and self.transport is not None:
            self.transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))


class RespClient:
    """One pipelined connection to Redis, opened on first use and after any failure."""

    def __init__(self, url: str, *, timeout: float, scripts: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"limits store: unsupported Redis URL scheme {parts.scheme!r} (redis://, rediss:// or unix://)"
            )
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        # unix:///run/redis.sock?db=2 (redis-py's form); redis://host:port/2
        self.socket_path = parts.path if parts.scheme == "unix" else ""
        query = dict(pair.partition("=")[::2] for pair in parts.query.split("&") if pair)
        path = query.get("db", "") if self.socket_path else parts.path.strip("/")
        self.db = int(path) if path.isdigit() else 0
        self.tls = parts.scheme == "rediss"
        self.timeout = timeout
        self.scripts = scripts
        self.shas = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in scripts.items()}
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._background_errors = 0

    @property
    def where(self) -> str:
        return f"{self.socket_path or f'{self.host}:{self.port}'}/{self.db}"

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        protocol = None
        try:
            async with asyncio.timeout(self.timeout):
                if self.socket_path:
                    _, protocol = await loop.create_unix_connection(lambda: _Protocol(self), self.socket_path)
                else:
                    tls = ssl.create_default_context() if self.tls else None
                    _, protocol = await loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=tls)
                await self._set_up(loop, protocol)
        except BaseException:
            if protocol is not None:
                protocol.fail(RespConnectionError("connection to Redis abandoned during set-up"))
            raise
        self._protocol = protocol
        return protocol

    async def _set_up(self, loop, protocol: _Protocol) -> None:
        """Authenticate, choose the database and load the scripts, pipelined."""
        setup = []
        if self.password is not None:
            setup.append(pack("AUTH", *([self.username] if self.username else []), self.password))
        if self.db:
            setup.append(pack("SELECT", self.db))
        setup += [pack("SCRIPT", "LOAD", body) for body in self.scripts.values()]
        waiters = [loop.create_future() for _ in setup]
        for command, waiter in zip(setup, waiters, strict=True):
            protocol.send(command, waiter)
        for waiter in waiters:
            reply = await waiter
            if isinstance(reply, RedisReplyError):
                raise RespConnectionError(f"Redis refused the limiter's set-up: {reply}")

    async def call(self, *command):
        """Send one command and wait (at most ``timeout``) for its reply."""
        return await self.call_packed(pack(*command))

    async def call_packed(self, command: bytes):
        """Send one packed command and wait (at most ``timeout``) for its reply."""
        try:
            async with asyncio.timeout(self.timeout):
                protocol = await self._connection()
                waiter = protocol.loop.create_future()
                protocol.send(command, waiter)
                reply = await waiter
        except TimeoutError:
            # A hung Redis: start afresh next time rather than queue behind it.
            self._drop()
            raise
        if isinstance(reply, RedisReplyError):
            if str(reply).startswith("NOSCRIPT"):
                self._drop()  # the script cache was flushed: reconnecting loads the scripts again
            raise reply
        return reply

    def send_nowait(self, command: bytes) -> bool:
        """Send a packed command whose reply nobody waits for. False when there is no open
        connection to send it on (the caller decides what to do)."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            return False
        protocol.send(command, DISCARD)
        return True

    def background_error(self, error: RedisReplyError) -> None:
        self._background_errors += 1
        if self._background_errors == 1 or self._background_errors % 1000 == 0:
            logger.warning("limits store redis: a request end failed (%s; %d so far)", error, self._background_errors)
        if str(error).startswith("NOSCRIPT"):
            self._drop()

    def _drop(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.fail(RespConnectionError("connection to Redis reset"))

    async def aclose(self) -> None:
        connecting = self._connecting
        if connecting is not None and not connecting.done():
            connecting.cancel()
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            # Send what lingers and give Redis a moment to take it before the socket closes.
            protocol._write()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):
                    while protocol.waiting and not protocol.closed:
                        await asyncio.sleep(0.005)
        self._drop()
