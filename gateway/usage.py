"""Token usage from answers relayed byte for byte, found without parsing every event.

Non-stream answers are small enough to parse whole (which also proves a 200 is the JSON it
claims to be); very large ones (embeddings) are only checked for shape and their ``usage``
object is decoded on its own.

Streams: OpenAI-compatible upstreams send usage in a last, choice-less event when asked
with ``stream_options.include_usage``. When the client did not ask, the gateway asks for it
anyway (``stream_usage_body``) and removes what that added (``UsageStripper``), so the
client sees exactly the stream it asked for and the gateway still counts tokens.
"""

from __future__ import annotations

import json
import re

from gateway.context import Usage

# Bodies up to this size are parsed whole; larger ones are checked by shape.
FULL_PARSE_LIMIT = 256 * 1024
TAIL_BYTES = 16 * 1024
USAGE_KEY = b'"usage"'
INCLUDE_USAGE = b',"stream_options":{"include_usage":true}}'
# What ``include_usage`` adds to every event: OpenAI writes ``"usage":null`` in each chunk.
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,')
_USAGE_ONLY = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\n\r\n)")
_DECODER = json.JSONDecoder()


class NotJSON(ValueError):
    """A 2xx answer that is not the JSON object it claims to be."""


def usage_from_body(body: bytes) -> Usage | None:
    """The usage of a complete OpenAI-shaped answer. Raises ``NotJSON`` for anything that is
    not a JSON object (an HTML error page with status 200, a truncated body)."""
    if len(body) <= FULL_PARSE_LIMIT:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise NotJSON("the answer is not valid JSON") from None
        if not isinstance(data, dict):
            raise NotJSON("the answer is not a JSON object")
        return Usage.from_openai(data.get("usage"))
    stripped = body.strip()
    if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
        raise NotJSON("the answer is not a JSON object")
    return _usage_near(body, body.rfind(USAGE_KEY))


def _usage_near(data: bytes, at: int) -> Usage | None:
    """Decode the object after ``"usage":`` at ``at``, if there is one."""
    if at < 0:
        return None
    colon = data.find(b":", at + len(USAGE_KEY))
    if colon < 0:
        return None
    text = data[colon + 1 : colon + 1 + 4096].decode("utf-8", "replace").lstrip()
    try:
        value, _ = _DECODER.raw_decode(text)
    except ValueError:
        return None
    return Usage.from_openai(value)


def stream_usage_body(payload: dict, body: bytes) -> bytes | None:
    """The request body with ``stream_options.include_usage`` turned on, or None when the
    client already asked for usage (nothing to add or strip)."""
    options = payload.get("stream_options")
    if options is None:
        stripped = body.rstrip()
        if stripped.endswith(b"}"):
            # Splice rather than re-serialise: the client's bytes go upstream otherwise unchanged.
            return stripped[:-1] + INCLUDE_USAGE
        return None
    if not isinstance(options, dict) or options.get("include_usage") is True:
        return None
    merged = dict(payload, stream_options={**options, "include_usage": True})
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


class StreamTail:
    """Relays a stream untouched, keeping its end: the usage event and the terminator live there."""

    __slots__ = ("tail",)

    def __init__(self) -> None:
        self.tail = b""

    def feed(self, chunk: bytes) -> bytes:
        tail = self.tail + chunk
        self.tail = tail[-TAIL_BYTES:] if len(tail) > TAIL_BYTES else tail
        return chunk

    def flush(self) -> bytes:
        return b""

    def ended_with_done(self) -> bool:
        return self.tail.rstrip().endswith(b"[DONE]")

    def usage(self) -> Usage | None:
        at = self.tail.rfind(USAGE_KEY)
        while at >= 0:
            found = _usage_near(self.tail, at)
            if found is not None:
                return found
            at = self.tail.rfind(USAGE_KEY, 0, at)
        return None


class UsageStripper:
    """Removes from a stream what ``include_usage`` added when the client did not ask for it:
    ``"usage":null`` in each event, and the final usage-only event (kept for accounting).

    Events are cut at their blank-line boundary; an incomplete event waits for the rest of
    it, which an SSE client would have to do anyway.
    """

    __slots__ = ("_usage", "last", "pending")

    def __init__(self) -> None:
        self.pending = b""
        self.last = b""
        self._usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        if not self.pending and chunk.endswith(b"\n\n"):
            complete = chunk  # the usual case: one or more whole events
        else:
            data = self.pending + chunk
            cut = max(data.rfind(b"\n\n") + 2, data.rfind(b"\n\r\n") + 3)
            if cut <= 2:
                self.pending = data
                return b""
            complete, self.pending = data[:cut], data[cut:]
        if USAGE_KEY in complete:
            complete = self._filter(complete)
        if complete:
            self.last = complete
        return complete

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        if rest:
            self.last = rest
        return rest

    def ended_with_done(self) -> bool:
        return self.last.rstrip().endswith(b"[DONE]")

    def usage(self) -> Usage | None:
        return self._usage

    def _filter(self, data: bytes) -> bytes:
        kept = []
        for event in _EVENT_END.split(data):
            if _USAGE_ONLY.search(event):
                found = _usage_near(event, event.find(USAGE_KEY))
                if found is not None:
                    self._usage = found
                    continue
            kept.append(_NULL_USAGE.sub(b"", event) if b"null" in event else event)
        return b"".join(kept)
