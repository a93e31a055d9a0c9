"""Slow clients cannot hold connections: header deadline, body-idle timeout, connection cap (Daphne)."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from tests.cli_process import GatewayProcess
from tests.server import rawhttp

TIMEOUT = 1.0  # ELDRIC_HEADER_TIMEOUT and ELDRIC_BODY_IDLE_TIMEOUT in this module
LINGER = 1.0
# The deadline plus the linger after a 408, plus room for a loaded machine.
CLOSED_WITHIN = TIMEOUT + LINGER + 3


@pytest.fixture(scope="module")
def server(data_dir):
    gateway = GatewayProcess(
        data_dir=data_dir(),
        env={
            "ELDRIC_HEADER_TIMEOUT": str(TIMEOUT),
            "ELDRIC_BODY_IDLE_TIMEOUT": str(TIMEOUT),
            "ELDRIC_LINGER_SECONDS": str(LINGER),
        },
    ).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def uvicorn_server(data_dir):
    gateway = GatewayProcess(
        server="uvicorn",
        data_dir=data_dir(),
        env={"ELDRIC_HEADER_TIMEOUT": str(TIMEOUT), "ELDRIC_BODY_IDLE_TIMEOUT": str(TIMEOUT)},
    ).start()
    yield gateway
    gateway.stop()


HALF_SENT = {
    "nothing": b"",
    "half the headers": b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
    "half the body": b'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"model"',
    "half a chunked body": (
        b'POST /api/v1/backends HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":'
    ),
}


def test_it_closes_hundreds_of_half_sent_requests_after_the_deadline(server):
    hold_half_sent_requests(server, expect_408=True)


def test_uvicorn_closes_them_too(uvicorn_server):
    hold_half_sent_requests(uvicorn_server, expect_408=False)  # uvicorn's app may be running: just closed


def hold_half_sent_requests(server: GatewayProcess, *, expect_408: bool) -> None:
    sockets = []
    with contextlib.ExitStack() as stack:
        for _ in range(75):
            for kind, data in HALF_SENT.items():
                sock = stack.enter_context(rawhttp.connect(server.port))
                if data:
                    sock.sendall(data)
                sockets.append((kind, sock))
        started = time.monotonic()
        for kind, sock in sockets:
            closed, received = rawhttp.closed_by_server(sock, max(0.1, started + CLOSED_WITHIN - time.monotonic()))
            assert closed, f"a connection with {kind} sent is still open after {CLOSED_WITHIN}s"
            if expect_408 and kind != "nothing":
                assert received.startswith(b"HTTP/1.1 408 "), (kind, received[:200])
                assert b'"code": "request_timeout"' in received
    assert server.get("/health").status_code == 200


def test_a_header_dripped_byte_by_byte_does_not_extend_the_deadline(server):
    request = HALF_SENT["half the headers"] * 20
    with rawhttp.connect(server.port) as sock:
        started = time.monotonic()
        closed = False
        for byte in request:  # one byte every 50 ms: far longer than the deadline in all
            if time.monotonic() - started > CLOSED_WITHIN:
                break
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed, _ = rawhttp.closed_by_server(sock, 0.05)
            if closed:
                break
        assert closed
        assert time.monotonic() - started < CLOSED_WITHIN


def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(server):
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = rawhttp.read_response(sock)
        assert response.status == 200
        closed, received = rawhttp.closed_by_server(sock, TIMEOUT + 3)
        assert closed
        assert received == b""  # nothing to answer: no request was started


def test_a_request_sent_in_time_is_answered(server):
    with rawhttp.connect(server.port) as sock:
        for _ in range(3):  # and keep-alive goes on between them
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert rawhttp.read_response(sock).status == 200
        # Pipelined: the second request waits in Twisted's buffer while the first is handled.
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2)
        assert rawhttp.read_response(sock).status == 200
        assert rawhttp.read_response(sock).status == 200


def test_over_the_connection_cap_new_connections_are_closed_and_logged_once(data_dir):
    cap = 20
    gateway = GatewayProcess(data_dir=data_dir(), env={"ELDRIC_MAX_CLIENT_CONNECTIONS": str(cap)}).start()
    try:
        with contextlib.ExitStack() as stack:
            held = [stack.enter_context(rawhttp.connect(gateway.port)) for _ in range(cap)]
            for _ in range(10):
                with rawhttp.connect(gateway.port) as extra:
                    closed, received = rawhttp.closed_by_server(extra, 3)
                    assert closed and received == b""
            line = gateway.wait_for_log("connection cap reached")
            assert "ELDRIC_MAX_CLIENT_CONNECTIONS" in line
            assert gateway.logs().count("connection cap reached") == 1  # rate-limited
            # The held connections are served normally.
            held[0].sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert rawhttp.read_response(held[0]).status == 200
        # Once they close, new connections are accepted again.
        gateway.wait_for(lambda: _health(gateway), "a connection accepted after the others closed", timeout=5)
    finally:
        gateway.stop()


def _health(gateway) -> bool:
    try:
        return gateway.get("/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="garbage request line"),
        pytest.param(b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", id="header without colon"),
        pytest.param(b"GET /health HTTP/1.1\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", id="oversized header"),
        pytest.param(
            b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            id="smuggling: both lengths",
        ),
        pytest.param(b"GET /health HTTP/1.1\r\nX-Bad\x01Name: 1\r\n\r\n", id="invalid header name"),
    ],
)
def test_a_malformed_request_gets_a_4xx_in_openai_shape(server, request_bytes):
    with rawhttp.connect(server.port) as sock:
        sock.sendall(request_bytes)
        response = rawhttp.read_response(sock)
    assert response is not None
    assert response.status in (400, 431)
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
