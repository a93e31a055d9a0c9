"""A backend that serves OpenAI's Responses API itself: the ``/v1/responses`` passthrough.

The client's request body goes to ``{url}/responses`` as it came (or, when it continues a
response the gateway stored, with that history spelled out), and the answer and the stream
come back byte for byte. Only the usage is read on the way, for accounting. Sans-IO like
every adapter; built per request because it carries the body.
"""

from __future__ import annotations

import re

from backends.providers.base import UpstreamRequest, answer_object, bearer_headers, parse_json
from backends.providers.openai_compatible import OpenAICompatibleProvider
from backends.providers.shapes import count

# The events that end a Responses stream; one of them must come before the upstream ends.
_TERMINAL = re.compile(rb'"type"\s*:\s*"(response\.(?:completed|incomplete|failed)|error)"')
# Sent when the upstream's stream stops without one: the client must not take a cut stream for
# a whole answer.
CUT_STREAM = (
    b'event: error\ndata: {"type":"error","code":"upstream_stream_error",'
    b'"message":"the backend ended the stream early","param":null,"sequence_number":0}\n\n'
)


def chat_usage(usage) -> dict | None:
    """A Responses ``usage`` object in the OpenAI chat form the gateway accounts."""
    if not isinstance(usage, dict):
        return None
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    cached = input_details.get("cached_tokens") if isinstance(input_details, dict) else 0
    reasoning = output_details.get("reasoning_tokens") if isinstance(output_details, dict) else 0
    return {
        "prompt_tokens": count(usage.get("input_tokens")),
        "completion_tokens": count(usage.get("output_tokens")),
        "total_tokens": count(usage.get("total_tokens")),
        "prompt_tokens_details": {"cached_tokens": count(cached)},
        "completion_tokens_details": {"reasoning_tokens": count(reasoning)},
    }


class ResponsesNative(OpenAICompatibleProvider):
    passthrough = False
    reads_own_usage = True

    def __init__(self, client_body: bytes) -> None:
        self.client_body = client_body

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{route.url}/responses", bearer_headers(route), self.client_body)

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        return body

    def answer_usage(self, body: bytes) -> dict | None:
        return chat_usage(answer_object(body).get("usage"))

    def stream_translator(self, route, payload: dict) -> NativeResponsesStream:
        return NativeResponsesStream()


class NativeResponsesStream:
    """Relays the upstream's events unchanged; reads the usage of its last event."""

    def __init__(self) -> None:
        self.usage: dict | None = None
        self.finished = False
        self._line = b""

    def feed(self, data: bytes) -> list[bytes]:
        if not self.finished:
            self._scan(data)
        return [data]

    def _scan(self, data: bytes) -> None:
        # Only data lines naming a terminal event are parsed; the rest is searched, not decoded.
        text = self._line + data
        *lines, self._line = text.split(b"\n")
        for line in lines:
            self._read(line)

    def _read(self, line: bytes) -> None:
        if not line.startswith(b"data:") or not _TERMINAL.search(line):
            return
        self.finished = True
        try:
            event = parse_json(line[5:])
        except (ValueError, UnicodeDecodeError):
            return
        response = event.get("response") if isinstance(event, dict) else None
        if isinstance(response, dict):
            self.usage = chat_usage(response.get("usage"))

    def close(self) -> list[bytes]:
        if self._line and not self.finished:
            self._read(self._line.rstrip(b"\r"))
        self._line = b""
        # The relay ends the response with the last frame; b"" ends it with nothing added.
        return [b""] if self.finished else [CUT_STREAM, b""]
