"""A client on a bare socket: half-sent requests and bodies sent while watching for an early answer."""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def connect(port: int, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def readable(sock: socket.socket, timeout: float = 0) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def read_response(sock: socket.socket, timeout: float = 5) -> RawResponse | None:
    """One response (Content-Length delimited), or None if the server closed without answering.

    Reads no further than the response, so pipelined responses can be read one at a time.
    """
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the response head did not complete")
        peeked = sock.recv(65536, socket.MSG_PEEK)
        if not peeked:
            return None
        end = peeked.find(b"\r\n\r\n")
        if end >= 0:
            break
        time.sleep(0.01)  # the rest of the head is on its way; PEEK would return at once
    head = _recv_exactly(sock, end + 4)[:-4]
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = _recv_exactly(sock, int(headers.get("content-length", "0")))
    return RawResponse(int(lines[0].split()[1]), headers, body)


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Wait up to ``timeout`` for the server to close; return (closed, what it sent first)."""
    deadline = time.monotonic() + timeout
    received = b""
    while time.monotonic() < deadline:
        if not readable(sock, deadline - time.monotonic()):
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


@dataclass
class Upload:
    sent: int  # body bytes handed to the kernel when the answer was first readable
    seconds_after_limit: float  # from the moment the bytes sent passed the limit to the answer
    response: RawResponse | None
    peak_rss_kb: int


def send_until_answered(sock, head: bytes, *, limit: int, chunked: bool, give_up_after: int, rss=None) -> Upload:
    """Send ``head`` and then a body of zeros until the server answers (or ``give_up_after`` bytes).

    ``rss`` is sampled between writes, so the peak covers the whole time the body was arriving.
    """
    piece = b"\0" * 256 * 1024
    frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece
    sock.sendall(head)
    sent = 0
    crossed_at = None
    peak = rss() if rss else 0
    while sent < give_up_after and not readable(sock):
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
        if crossed_at is None and sent > limit:
            crossed_at = time.monotonic()
        if rss:
            peak = max(peak, rss())
    readable(sock, 5)
    answered_at = time.monotonic()
    response = read_response(sock)
    if rss:
        peak = max(peak, rss())
    after = answered_at - crossed_at if crossed_at is not None else 0.0
    return Upload(sent=sent, seconds_after_limit=after, response=response, peak_rss_kb=peak)
