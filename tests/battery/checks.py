"""Sending the battery's JSON cases and judging each answer against its rule."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from tests.battery import cases as c
from tests.battery.conftest import KEYS

# 5xx a client may see: the gateway could not get a good answer from an upstream.
UPSTREAM_5XX = frozenset({502, 503, 504})
ERROR_KEYS = frozenset({"message", "type", "param", "code"})
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
THREADS = 4


@dataclass
class Answer:
    status: int | None
    headers: httpx.Headers | None
    body: bytes
    failure: str | None = None  # the request itself failed (timeout, reset)


def related(param: str, field: str) -> bool:
    """Whether ``param`` names ``field``, a field inside it, or the field that holds it."""
    if param == field:
        return True
    return any(long.startswith(short) and long[len(short)] in ".[" for short, long in ((param, field), (field, param)))


def openai_error(answer: Answer) -> tuple[dict | None, str | None]:
    """The ``error`` object of an error answer, or what is wrong with its shape."""
    if not (answer.headers and answer.headers.get("content-type", "").startswith("application/json")):
        return None, f"error answer is not JSON (content-type {answer.headers.get('content-type')!r})"
    try:
        data = json.loads(answer.body)
    except ValueError:
        return None, "error answer is not valid JSON"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not set(error) >= ERROR_KEYS:
        return None, "error answer is not {'error': {message, type, param, code}}"
    if not isinstance(error["message"], str) or not error["message"] or not isinstance(error["type"], str):
        return None, "error message or type is not a non-empty string"
    if error["param"] is not None and not isinstance(error["param"], str):
        return None, "error param is neither a string nor null"
    return error, None


def judge(case: c.JsonCase, answer: Answer) -> str | None:
    """None when the answer obeys the case's rule; else what is wrong, in a few words."""
    if answer.failure:
        return answer.failure
    status = answer.status
    leaked = [name for name, key in KEYS.items() if key.encode() in answer.body or key in str(answer.headers)]
    if leaked:
        return f"the answer carries the upstream key of {', '.join(leaked)}"
    if status >= 500 and status not in UPSTREAM_5XX:
        return f"server error {status}"
    if case.method == "HEAD" and status >= 400:
        return None if case.rule != c.METHOD or status == 405 else f"expected 405, got {status}"
    error = None
    if status >= 400:
        error, problem = openai_error(answer)
        if problem:
            return problem
    param = error["param"] if error else None
    rule = case.rule
    if rule == c.STREAMED and status == 200:
        return stream_problem(answer)
    if rule in (c.WRONG_TYPE, c.STREAMED):
        if status not in (200, 400):
            return f"expected 200 or 400, got {status}"
        if param is not None and case.field and not related(param, case.field):
            return f"param {param!r} does not name {case.field!r}"
    elif rule == c.GATEWAY_FIELD:
        if status != 400 or param != case.field:
            return f"expected 400 with param {case.field!r}, got {status} with param {param!r}"
    elif rule == c.NAMES_FIELD:
        if status != 400 or param is None or not related(param, case.field):
            return f"expected 400 naming {case.field!r}, got {status} with param {param!r}"
    elif rule == c.INVALID:
        if status != 400:
            return f"expected 400, got {status}"
    elif rule == c.MEDIA_TYPE:
        if status != 415:
            return f"expected 415, got {status}"
    elif rule == c.TOO_LARGE:
        if status != 413:
            return f"expected 413, got {status}"
    elif rule == c.METHOD and (status != 405 or not answer.headers.get("allow")):
        return f"expected 405 with Allow, got {status} (Allow: {answer.headers.get('allow')!r})"
    return None


def stream_problem(answer: Answer) -> str | None:
    """What is wrong with a 200 event stream: its type, a frame that is not JSON, a server error
    event, or a missing ``[DONE]``."""
    if not answer.headers.get("content-type", "").startswith("text/event-stream"):
        return f"a stream answered as {answer.headers.get('content-type')!r}"
    data = [line[5:].strip() for line in answer.body.split(b"\n") if line.startswith(b"data:")]
    if not data or data[-1] != b"[DONE]":
        return "the stream does not end with data: [DONE]"
    for frame in data[:-1]:
        try:
            event = json.loads(frame)
        except ValueError:
            return f"a stream event is not JSON: {frame[:80]!r}"
        if isinstance(event, dict) and "error" in event:
            error, problem = openai_error(Answer(400, httpx.Headers({"content-type": "application/json"}), frame))
            if problem:
                return f"stream error event: {problem}"
            if error["type"] == "server_error" or error.get("code") == "internal_error":
                return f"the stream ended with a server error: {error['message'][:120]}"
    return None


class Sender:
    """A few keep-alive clients, one per thread."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, timeout=TIMEOUT)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def send(self, case: c.JsonCase) -> Answer:
        headers = dict(case.headers)
        if case.content_type:
            headers["content-type"] = case.content_type
        try:
            response = self._client().request(case.method, case.path, content=case.body, headers=headers)
        except httpx.HTTPError as exc:
            return Answer(None, None, b"", f"{type(exc).__name__}: {exc}")
        return Answer(response.status_code, response.headers, response.content)

    def run(self, cases: list[c.JsonCase]) -> list[tuple[c.JsonCase, Answer]]:
        with ThreadPoolExecutor(THREADS) as pool:
            return list(zip(cases, pool.map(self.send, cases), strict=True))

    def close(self) -> None:
        for client in self._clients:
            client.close()


def summary(failures: list[tuple[c.JsonCase, Answer, str]], limit: int = 60) -> str:
    """Readable: which case, what was wrong, the status and the start of the body."""
    lines = [f"{len(failures)} case(s) failed:"]
    for case, answer, problem in failures[:limit]:
        body = answer.body[:240].decode("utf-8", "backslashreplace")
        lines.append(f"- {case.id} [{case.method} {case.path}]: {problem}\n    status {answer.status}: {body}")
    if len(failures) > limit:
        lines.append(f"... and {len(failures) - limit} more")
    return "\n".join(lines)
