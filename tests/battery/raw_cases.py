"""The battery's HTTP-level cases: bytes no HTTP client library would send, for a bare socket.

Request smuggling (conflicting or duplicated framing headers, obs-fold), garbage request lines
and targets, oversized headers and bodies, wrong methods, and bodies cut short. Every smuggling
case carries a second request after its body, so a server that frames the body differently
from how it was meant answers twice, and the battery sees it.
"""

from __future__ import annotations

import dataclasses

from tests.battery.conftest import CHAT_MODELS, MAX_BODY_BYTES

# What the answer must be (besides: no 5xx other than 502-504, no hang, errors in OpenAI's shape).
REFUSED = "refused"  # a 4xx or a closed connection, and never a second answer
ONE_ANSWER = "one_answer"  # any clean answer (or a close), and never a second one
ANSWERS = "answers"  # clean answers: a second request after a well-framed one may be answered too
METHOD = "method"  # 405 with Allow (or the server's own 400)
TOO_LARGE = "too_large"  # 413 or a closed connection

SMUGGLED = b"GET /v1/models HTTP/1.1\r\nHost: battery\r\n\r\n"
TARGETS = ("/v1/chat/completions", "/v1/embeddings", "/health")


@dataclasses.dataclass(frozen=True)
class RawCase:
    id: str
    data: bytes
    rule: str
    # Close our sending side once the data is out (the server sees the end of the request).
    half_close: bool = False
    # Send a body of zeros after ``data`` until the server answers (up to this many bytes).
    stream_body: int = 0
    chunked: bool = False
    head: bool = False


def request(method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"", *,
            version: str = "HTTP/1.1", host: bool = True) -> bytes:  # fmt: skip
    lines = [f"{method} {target} {version}".encode("latin-1")]
    if host:
        lines.append(b"Host: battery")
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers or []]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"


BODY = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}'
CHUNKED = _chunked(BODY)

# (label, headers, body): conflicting or malformed framing. The body is followed by SMUGGLED.
FRAMING = [
    ("cl-then-te", [("Content-Length", str(len(CHUNKED))), ("Transfer-Encoding", "chunked")], CHUNKED),
    ("te-then-cl", [("Transfer-Encoding", "chunked"), ("Content-Length", str(len(CHUNKED)))], CHUNKED),
    ("cl-short-te", [("Content-Length", "4"), ("Transfer-Encoding", "chunked")], CHUNKED),
    ("cl-zero-te", [("Content-Length", "0"), ("Transfer-Encoding", "chunked")], CHUNKED),
    ("two-cl-differ", [("Content-Length", str(len(BODY))), ("Content-Length", "3")], BODY),
    ("two-cl-differ-reversed", [("Content-Length", "3"), ("Content-Length", str(len(BODY)))], BODY),
    ("cl-list-differ", [("Content-Length", f"{len(BODY)}, 3")], BODY),
    ("cl-negative", [("Content-Length", "-1")], BODY),
    ("cl-plus-sign", [("Content-Length", f"+{len(BODY)}")], BODY),
    ("cl-hex", [("Content-Length", hex(len(BODY)))], BODY),
    ("cl-decimal-point", [("Content-Length", f"{len(BODY)}.0")], BODY),
    ("cl-two-numbers", [("Content-Length", f"{len(BODY)} 3")], BODY),
    ("cl-underscore", [("Content-Length", "1_0")], BODY),
    ("cl-letters", [("Content-Length", "abc")], BODY),
    ("cl-empty", [("Content-Length", "")], BODY),
    ("cl-huge", [("Content-Length", "9" * 40)], BODY),
    ("cl-space-before-colon", [("Content-Length ", str(len(BODY)))], BODY),
    ("te-chunked-identity", [("Transfer-Encoding", "chunked, identity")], CHUNKED),
    ("te-identity-chunked", [("Transfer-Encoding", "identity, chunked")], CHUNKED),
    ("te-gzip-chunked", [("Transfer-Encoding", "gzip, chunked")], CHUNKED),
    ("te-chunked-twice", [("Transfer-Encoding", "chunked, chunked")], CHUNKED),
    ("te-two-headers", [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "identity")], CHUNKED),
    ("te-identity", [("Transfer-Encoding", "identity"), ("Content-Length", str(len(BODY)))], BODY),
    ("te-xchunked", [("Transfer-Encoding", "xchunked"), ("Content-Length", str(len(CHUNKED)))], CHUNKED),
    ("te-capitalised", [("Transfer-Encoding", "Chunked")], CHUNKED),
    ("te-leading-tab", [("Transfer-Encoding", "\tchunked")], CHUNKED),
    ("te-vertical-tab", [("Transfer-Encoding", "chunked\x0b"), ("Content-Length", str(len(CHUNKED)))], CHUNKED),
    ("te-space-before-colon", [("Transfer-Encoding ", "chunked"), ("Content-Length", str(len(CHUNKED)))], CHUNKED),
    ("te-underscore-name", [("Transfer_Encoding", "chunked"), ("Content-Length", str(len(CHUNKED)))], CHUNKED),
    ("te-obs-fold", [("Transfer-Encoding", "\r\n chunked"), ("Content-Length", str(len(CHUNKED)))], CHUNKED),
    ("cl-obs-fold", [("Content-Length", f"3\r\n {len(BODY)}")], BODY),
    ("header-obs-fold", [("X-Battery", "a\r\n b"), ("Content-Length", str(len(BODY)))], BODY),
    ("header-obs-fold-tab", [("X-Battery", "a\r\n\tb"), ("Content-Length", str(len(BODY)))], BODY),
    ("chunk-size-garbage", [("Transfer-Encoding", "chunked")], b"zz\r\n" + BODY + b"\r\n0\r\n\r\n"),
    ("chunk-size-negative", [("Transfer-Encoding", "chunked")], b"-5\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-0x", [("Transfer-Encoding", "chunked")], b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-overflow", [("Transfer-Encoding", "chunked")], b"f" * 40 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-space", [("Transfer-Encoding", "chunked")], b"5 \r\nhello\r\n0\r\n\r\n"),
    ("chunk-longer-than-size", [("Transfer-Encoding", "chunked")], b"2\r\nhello\r\n0\r\n\r\n"),
    ("chunk-no-crlf-after-data", [("Transfer-Encoding", "chunked")], b"5\r\nhello0\r\n\r\n"),
    ("chunk-bare-lf", [("Transfer-Encoding", "chunked")], b"5\nhello\n0\n\n"),
    ("chunk-extension", [("Transfer-Encoding", "chunked")], b"%x;ext=1\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)),
    ("chunk-trailer-cl", [("Transfer-Encoding", "chunked")], CHUNKED[:-2] + b"Content-Length: 5\r\n\r\n"),
    ("chunk-huge-extension", [("Transfer-Encoding", "chunked")], b"5;" + b"e" * 70_000 + b"\r\nhello\r\n0\r\n\r\n"),
]  # fmt: skip


# Framing that is valid HTTP/1.1 (or that RFC 9112 lets a server repair, as obs-fold in an ordinary
# header): the request after it is a pipelined one, which may be answered. Every other FRAMING case
# is ambiguous or invalid, and a server must refuse it or close after one answer (RFC 9112 §6.1, §6.3).
WELL_FRAMED = {
    "te-capitalised",
    "te-leading-tab",
    "te-underscore-name",
    "header-obs-fold",
    "header-obs-fold-tab",
    "chunk-extension",
    "chunk-trailer-cl",
}


def framing_cases() -> list[RawCase]:
    cases = []
    for target in TARGETS:
        for label, headers, body in FRAMING:
            data = request("POST", target, [("Content-Type", "application/json"), *headers], body) + SMUGGLED
            rule = ANSWERS if label in WELL_FRAMED else ONE_ANSWER
            cases.append(RawCase(f"raw/{target}/smuggle={label}", data, rule))
    return cases


def header_cases() -> list[RawCase]:
    """Malformed and oversized header sections."""
    shapes = [
        ("bare-lf-lines", b"GET /health HTTP/1.1\nHost: battery\n\n", ONE_ANSWER),
        ("bare-cr-in-value", request("GET", "/health", [("X-Battery", "a\rb")]), ONE_ANSWER),
        ("nul-in-value", request("GET", "/health", [("X-Battery", "a\x00b")]), ONE_ANSWER),
        ("nul-in-name", request("GET", "/health", [("X-Bat\x00tery", "a")]), ONE_ANSWER),
        ("space-in-name", request("GET", "/health", [("X Battery", "a")]), ONE_ANSWER),
        ("no-colon", b"GET /health HTTP/1.1\r\nHost: battery\r\nNoColonHere\r\n\r\n", ONE_ANSWER),
        ("empty-name", request("GET", "/health", [("", "a")]), ONE_ANSWER),
        ("non-ascii-name", b"GET /health HTTP/1.1\r\nHost: battery\r\nX-\xc3\xa9: a\r\n\r\n", ONE_ANSWER),
        ("non-ascii-value", b"GET /health HTTP/1.1\r\nHost: battery\r\nX-Battery: \xff\xfe\r\n\r\n", ONE_ANSWER),
        ("no-host", request("GET", "/health", host=False), ONE_ANSWER),
        ("two-hosts", request("GET", "/health", [("Host", "other")]), ONE_ANSWER),
        ("request-id-garbage", request("GET", "/health", [("X-Request-Id", "\xff" * 300)]), ONE_ANSWER),
        ("authorization-garbage", request("GET", "/v1/models", [("Authorization", "Bearer \xff\x00")]), ONE_ANSWER),
        ("authorization-huge", request("GET", "/v1/models", [("Authorization", "Bearer " + "k" * 8000)]), ONE_ANSWER),
        ("content-type-garbage", request("POST", "/v1/chat/completions", [("Content-Type", "\xff;;;=="),
                                 ("Content-Length", str(len(BODY)))], BODY), ONE_ANSWER),
        ("expect-continue-too-large", request("POST", "/v1/chat/completions", [("Expect", "100-continue"),
                                      ("Content-Length", str(MAX_BODY_BYTES + 1))]), TOO_LARGE),
        ("expect-garbage", request("POST", "/v1/chat/completions", [("Expect", "\xff"),
                           ("Content-Length", str(len(BODY)))], BODY), ONE_ANSWER),
    ]  # fmt: skip
    cases = [RawCase(f"raw/headers={label}", data, rule) for label, data, rule in shapes]
    for target in ("/health", "/v1/chat/completions", "/api/v1/backends"):
        oversized = [
            ("one-16k-header", [("X-Battery", "a" * 16_384)]),
            ("one-64k-header", [("X-Battery", "a" * 65_536)]),
            ("one-1m-header", [("X-Battery", "a" * 1_048_576)]),
            ("64k-header-name", [("X" * 65_536, "a")]),
            ("1000-headers", [(f"X-Battery-{i}", "a") for i in range(1_000)]),
            ("20000-headers", [(f"X-B{i}", "") for i in range(20_000)]),
            ("1m-cookie", [("Cookie", "a=" + "b" * 1_048_576)]),
        ]
        for label, headers in oversized:
            cases.append(RawCase(f"raw/{target}/headers={label}", request("GET", target, headers), ONE_ANSWER))
    return cases


GARBAGE_LINES = [
    ("empty-lines", b"\r\n\r\n\r\n", REFUSED),
    ("only-method", b"GET\r\n\r\n", REFUSED),
    ("no-version", b"GET /health\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("extra-token", b"GET /health HTTP/1.1 extra\r\nHost: battery\r\n\r\n", REFUSED),
    ("double-space", b"GET  /health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("tabs", b"GET\t/health\tHTTP/1.1\r\nHost: battery\r\n\r\n", REFUSED),
    ("lowercase-method", b"get /health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("version-9", b"GET /health HTTP/9.9\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("version-1", b"GET /health HTTP/1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("version-garbage", b"GET /health FOO/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("version-lowercase", b"GET /health http/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("version-1.0", b"GET /health HTTP/1.0\r\n\r\n", ONE_ANSWER),
    ("version-0.9", b"GET /health\r\n", ONE_ANSWER),
    ("absolute-form", b"GET http://evil.example/health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("asterisk", b"OPTIONS * HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("connect-authority", b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("no-leading-slash", b"GET health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("dot-segments", b"GET /v1/../health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("encoded-dot-segments", b"GET /v1/models/%2e%2e%2f%2e%2e%2fetc HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("percent-ff-model", b"GET /v1/models/%ff HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("percent-nul-model", b"GET /v1/models/%00 HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("percent-surrogate-model", b"GET /v1/models/%ed%a0%80 HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("bad-percent", b"GET /v1/%zz HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("raw-ff-in-path", b"GET /v1/models/\xff HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("raw-nul-in-path", b"GET /v1/models/\x00 HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("percent-ff-query", b"GET /health?%ff=%ff HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("many-query-params", b"GET /health?" + b"a=1&" * 20_000 + b" HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("long-model-id", b"GET /v1/models/" + b"m" * 4_000 + b" HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("8k-path", b"GET /" + b"a" * 8_192 + b" HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("64k-path", b"GET /" + b"a" * 65_536 + b" HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("1m-request-line", b"GET /" + b"a" * 1_048_576 + b" HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("long-method", b"M" * 10_000 + b" /health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("method-symbols", b"G@T /health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("method-utf8", "GÉT /health HTTP/1.1\r\nHost: battery\r\n\r\n".encode(), ONE_ANSWER),
    ("nul-bytes", b"\x00" * 64 + b"\r\n\r\n", REFUSED),
    ("binary", bytes(range(256)) + b"\r\n\r\n", REFUSED),
    ("tls-client-hello", bytes.fromhex("16030100a5010000a10303") + b"\x00" * 32 + b"\r\n\r\n", REFUSED),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ONE_ANSWER),
    ("websocket-upgrade-garbage", b"GET /v1/models HTTP/1.1\r\nHost: battery\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\nSec-WebSocket-Key: \xff\r\n\r\n", ONE_ANSWER),
    ("h2c-upgrade", b"GET /health HTTP/1.1\r\nHost: battery\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", ONE_ANSWER),
    ("leading-crlf", b"\r\n\r\nGET /health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
    ("leading-space", b" GET /health HTTP/1.1\r\nHost: battery\r\n\r\n", ONE_ANSWER),
]  # fmt: skip


def request_line_cases() -> list[RawCase]:
    return [RawCase(f"raw/request-line={label}", data, rule) for label, data, rule in GARBAGE_LINES]


METHODS = ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW", "POST"]
ALLOWED = {
    "/v1/chat/completions": {"POST"},
    "/v1/embeddings": {"POST"},
    "/v1/models": {"GET", "HEAD"},
    f"/v1/models/{CHAT_MODELS['openai_compatible']}": {"GET", "HEAD"},
    "/v1/unknown-endpoint": set(),
    "/health": {"GET", "HEAD"},
    "/health/ready": {"GET", "HEAD"},
}


def method_cases() -> list[RawCase]:
    cases = []
    for target, allowed in ALLOWED.items():
        for method in METHODS:
            if method in allowed:
                continue
            headers = [("Content-Length", "2")] if method not in ("GET", "HEAD", "TRACE", "CONNECT") else []
            body = b"{}" if headers else b""
            rule = METHOD if allowed else REFUSED
            cases.append(RawCase(f"raw/{target}/method={method}", request(method, target, headers, body), rule,
                                 head=method == "HEAD"))  # fmt: skip
    return cases


def body_cases() -> list[RawCase]:
    """Bodies over the limit, bodies cut short, and empty ones."""
    cases = []
    for target in ("/v1/chat/completions", "/v1/embeddings", "/api/v1/backends", "/admin/login/"):
        json_type = [("Content-Type", "application/json")]
        declared = request("POST", target, [*json_type, ("Content-Length", str(MAX_BODY_BYTES + 1))])
        cases.append(RawCase(f"raw/{target}/body=declared-over-limit", declared, TOO_LARGE))
        huge = request("POST", target, [*json_type, ("Content-Length", str(2**62))])
        cases.append(RawCase(f"raw/{target}/body=declared-2-to-62", huge, TOO_LARGE))
        sent = request("POST", target, [*json_type, ("Content-Length", str(MAX_BODY_BYTES * 4))])
        cases.append(RawCase(f"raw/{target}/body=sent-over-limit", sent, TOO_LARGE, stream_body=MAX_BODY_BYTES * 4))
        chunked = request("POST", target, [*json_type, ("Transfer-Encoding", "chunked")])
        cases.append(RawCase(f"raw/{target}/body=chunked-over-limit", chunked, TOO_LARGE,
                             stream_body=MAX_BODY_BYTES * 4, chunked=True))  # fmt: skip
    for target in ("/v1/chat/completions", "/v1/embeddings"):
        json_type = [("Content-Type", "application/json")]
        short = request("POST", target, [*json_type, ("Content-Length", "100")], BODY[:10])
        cases.append(RawCase(f"raw/{target}/body=cut-short-then-eof", short, REFUSED, half_close=True))
        cases.append(RawCase(f"raw/{target}/body=cut-short-then-silence", short, REFUSED))
        partial = request("POST", target, [*json_type, ("Transfer-Encoding", "chunked")], b"40\r\n" + BODY[:10])
        cases.append(RawCase(f"raw/{target}/body=chunk-cut-short-then-eof", partial, REFUSED, half_close=True))
        cases.append(RawCase(f"raw/{target}/body=chunk-cut-short-then-silence", partial, REFUSED))
        no_end = request("POST", target, [*json_type, ("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n")
        cases.append(RawCase(f"raw/{target}/body=no-last-chunk-then-eof", no_end, REFUSED, half_close=True))
        for label, headers in (("no-length", []), ("length-zero", [("Content-Length", "0")])):
            cases.append(RawCase(f"raw/{target}/body=empty-{label}", request("POST", target, [*json_type, *headers]),
                                 REFUSED, half_close=not headers))  # fmt: skip
        truncated = BODY[: len(BODY) // 2]
        whole = request("POST", target, [*json_type, ("Content-Length", str(len(truncated)))], truncated)
        cases.append(RawCase(f"raw/{target}/body=truncated-json", whole, REFUSED))
    return cases


def all_raw_cases() -> list[RawCase]:
    return [*framing_cases(), *header_cases(), *request_line_cases(), *method_cases(), *body_cases()]
