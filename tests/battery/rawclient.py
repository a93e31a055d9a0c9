"""Sending raw cases on bare sockets, reading every answer within a deadline, and judging them."""

from __future__ import annotations

import dataclasses
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.battery import raw_cases as r
from tests.battery.checks import UPSTREAM_5XX, Answer, openai_error

# Longest wait for an answer or a close: above the daemon's header and body-idle timeouts.
READ_TIMEOUT = 6.0
# After a complete answer, how long to watch for a second one (a smuggled request's).
SECOND_ANSWER_WAIT = 0.3
THREADS = 8
PIECE = 64 * 1024


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass
class Outcome:
    responses: list[Response]
    closed: bool
    hung: bool
    unparsable: bytes = b""  # what came back that is not HTTP/1.x


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _chunked_end(data: bytes, start: int) -> int | None:
    """Where a chunked body starting at ``start`` ends, or None while it is incomplete."""
    at = start
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(data[at:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", line_end)
            return None if trailer_end < 0 else trailer_end + 4
        at = line_end + 2 + size + 2
        if at > len(data):
            return None


def parse(data: bytes, *, head: bool, closed: bool) -> tuple[list[Response], bytes]:
    """The final responses in ``data`` (interim 1xx skipped), and any bytes that are not HTTP."""
    responses = []
    at = 0
    while at < len(data):
        if not data.startswith(b"HTTP/1.", at):
            return responses, data[at:]
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            break
        lines = data[at:end].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = _headers(lines[1:])
        start = end + 4
        if head or status < 200 or status in (204, 304):
            stop = start
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            stop = _chunked_end(data, start)
            if stop is None:
                break
        elif "content-length" in headers:
            stop = start + int(headers["content-length"])
            if stop > len(data):
                break
        elif closed:
            stop = len(data)
        else:
            break
        if status >= 200:
            responses.append(Response(status, headers, data[start:stop]))
        at = stop
    return responses, b""


def _send_body(sock: socket.socket, case: r.RawCase) -> None:
    """Zeros until the server answers (or the case's cap): the body that never ends."""
    piece = b"\0" * PIECE
    frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if case.chunked else piece
    sent = 0
    while sent < case.stream_body and not select.select([sock], [], [], 0)[0]:
        sock.sendall(frame)
        sent += PIECE


def send(port: int, case: r.RawCase) -> Outcome:
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
    try:
        try:
            sock.sendall(case.data)
            if case.stream_body:
                _send_body(sock, case)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading, or closed: what it answered is read below
        return _read(sock, case)
    finally:
        sock.close()


def _read(sock: socket.socket, case: r.RawCase) -> Outcome:
    deadline = time.monotonic() + READ_TIMEOUT
    data = b""
    closed = False
    responses: list[Response] = []
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if not select.select([sock], [], [], deadline - now)[0]:
            break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        if not chunk:
            closed = True
            break
        data += chunk
        responses, junk = parse(data, head=case.head, closed=False)
        if junk:
            return Outcome(responses, closed, hung=False, unparsable=junk[:200])
        if responses:
            deadline = min(deadline, time.monotonic() + SECOND_ANSWER_WAIT)
    # Whatever arrived by the deadline counts, a body without a length included.
    responses, junk = parse(data, head=case.head, closed=True)
    return Outcome(responses, closed, hung=not responses and not closed, unparsable=junk[:200])


def judge(case: r.RawCase, outcome: Outcome) -> str | None:
    if outcome.hung:
        return f"no answer and no close within {READ_TIMEOUT:g} s"
    if outcome.unparsable:
        return f"answered with bytes that are not HTTP: {outcome.unparsable[:80]!r}"
    for response in outcome.responses:
        if response.status >= 500 and response.status not in UPSTREAM_5XX:
            return f"server error {response.status}"
        if response.status >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            _, problem = openai_error(Answer(response.status, httpx.Headers(response.headers), response.body))
            if problem and not case.head:
                return problem
    statuses = [response.status for response in outcome.responses]
    if case.rule != r.ANSWERS and len(statuses) > 1:
        return f"answered {len(statuses)} times {statuses}: the request after the body was read as a new one"
    first = statuses[0] if statuses else None
    if case.rule == r.REFUSED and first is not None and not 400 <= first < 500:
        return f"expected a 4xx or a close, got {first}"
    if case.rule == r.TOO_LARGE and first is not None and first != 413:
        return f"expected 413 or a close, got {first}"
    if case.rule == r.METHOD:
        response = outcome.responses[0] if outcome.responses else None
        if response is None or not (response.status == 405 and response.headers.get("allow")):
            return f"expected 405 with Allow, got {first} (Allow: {response and response.headers.get('allow')!r})"
    return None


def run(port: int, cases: list[r.RawCase]) -> list[tuple[r.RawCase, Outcome]]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(zip(cases, pool.map(lambda case: send(port, case), cases), strict=True))


def summary(failures: list[tuple[r.RawCase, Outcome, str]], limit: int = 60) -> str:
    lines = [f"{len(failures)} raw case(s) failed:"]
    for case, outcome, problem in failures[:limit]:
        sent = case.data[:120]
        answers = "; ".join(f"{x.status} {x.body[:160].decode('utf-8', 'backslashreplace')}" for x in outcome.responses)
        lines.append(f"- {case.id}: {problem}\n    sent {sent!r}\n    got {answers or '(nothing)'}"
                     f"{' then close' if outcome.closed else ''}")  # fmt: skip
    if len(failures) > limit:
        lines.append(f"... and {len(failures) - limit} more")
    return "\n".join(lines)
