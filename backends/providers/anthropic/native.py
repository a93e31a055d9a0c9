"""An Anthropic backend spoken to in its own protocol: the Messages ingress's passthrough.

When a client calls ``/v1/messages`` and the chosen backend is ``type: anthropic``, the
client's own request body goes upstream as it came, and the answer and stream come back
untouched: no double translation, nothing the OpenAI form cannot hold is lost
(``cache_control``, signed thinking blocks, server-side features). Only the usage is read on
the way, for accounting. Sans-IO like every adapter.
"""

from __future__ import annotations

from backends.providers.anthropic import AnthropicProvider, anthropic_headers
from backends.providers.anthropic.response import usage
from backends.providers.anthropic.stream import AnthropicStream
from backends.providers.base import UpstreamRequest, answer_object

# Sent when the upstream's stream stops before ``message_stop``: the client must not take a
# cut stream for a whole answer.
CUT_STREAM = (
    b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
    b'"message":"the backend ended the stream early"}}\n\n'
)


class AnthropicNative(AnthropicProvider):
    """One request's adapter: it carries the client's body (so it is built per request)."""

    reads_own_usage = True

    def __init__(self, client_body: bytes) -> None:
        self.client_body = client_body

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{route.url}/messages", anthropic_headers(route), self.client_body)

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        return body

    def answer_usage(self, body: bytes) -> dict:
        """OpenAI-shaped usage of an Anthropic answer (the gateway's accounting reads OpenAI's).
        Raises ValueError when the answer is not a JSON object: a 2xx that is not what it claims."""
        return usage(answer_object(body).get("usage"))

    def stream_translator(self, route, payload: dict) -> NativeStream:
        return NativeStream(payload)


class NativeStream:
    """Relays Anthropic's events unchanged, reading their usage through the adapter's own
    stream parser (whose OpenAI frames are dropped)."""

    def __init__(self, payload: dict) -> None:
        self._reader = AnthropicStream(payload)

    @property
    def usage(self) -> dict | None:
        return self._reader.usage

    def feed(self, data: bytes) -> list[bytes]:
        self._reader.feed(data)
        return [data]

    def close(self) -> list[bytes]:
        self._reader.close()
        complete = self._reader.finished
        # The relay ends the response with the last frame; b"" ends it with nothing added.
        return [b""] if complete else [CUT_STREAM, b""]
