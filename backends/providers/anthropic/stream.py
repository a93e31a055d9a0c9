"""Anthropic SSE events -> OpenAI ``chat.completion.chunk`` frames (``providers.md`` §2.4, §6.3).

``feed`` accepts bytes cut anywhere (mid-line, mid-UTF-8 character): it only parses complete
lines, and dispatches an event at the blank line that ends it.
"""

from __future__ import annotations

import logging
import time

from backends.providers import shapes
from backends.providers.anthropic import errors
from backends.providers.anthropic.response import finish_reason, usage
from backends.providers.anthropic.structured import answer_tool_name
from backends.providers.base import SSE_DONE, OpenAIError, ProviderError, clean_text, parse_json
from backends.providers.lines import LineFramedStream
from backends.providers.shapes import frame

logger = logging.getLogger(__name__)


class AnthropicStream(LineFramedStream):
    """One translator per upstream stream (it keeps the state of the message being built)."""

    def __init__(self, payload: dict) -> None:
        super().__init__()
        self.include_usage = shapes.wants_usage(payload)
        self.id = f"chatcmpl-{time.time_ns()}"
        model = payload.get("model") if isinstance(payload, dict) else None
        self.model = model if isinstance(model, str) else ""
        self.created = int(time.time())
        # OpenAI-shaped usage once Anthropic reported any (message_start, then cumulative in
        # message_delta), for the gateway's accounting; None before.
        self.usage: dict | None = None
        self._anthropic_usage: dict = {}
        self._event = ""
        self._data: list[bytes] = []
        # Anthropic block index -> OpenAI tool_calls index (counts tool blocks only).
        self._tool_index: dict[int, int] = {}
        self._tool_has_args: dict[int, bool] = {}
        # Anthropic block index -> (thinking block ordinal, accumulated thinking text).
        self._thinking: dict[int, tuple[int, list[str]]] = {}
        self._thinking_count = 0
        self._stopped = False  # message_stop arrived
        # ``_ended`` (LineFramedStream): [DONE] already emitted (after an error event).
        self._upstream_error = False  # Anthropic sent an error event
        # The forced tool carrying response_format (``structured``): its input JSON streams as
        # ``delta.content``; text beside it is dropped so the content stays parseable.
        self._response_tool = answer_tool_name(payload)
        self._answer_index: int | None = None  # block index of the response tool
        self._answer_has_json = False

    @property
    def finished(self) -> bool:
        """Whether Anthropic ended the message itself: ``message_stop``, or an error event."""
        return self._stopped or self._upstream_error

    # --- framing ------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[bytes]:
        return self._feed_lines(data)

    def close(self) -> list[bytes]:
        if self._ended:
            return []
        out: list[bytes] = []
        self._close_lines(out)
        if self._ended:
            return out
        if not self._stopped:
            logger.warning("anthropic: stream ended before message_stop")
            out.append(
                OpenAIError(
                    502,
                    "Anthropic ended the stream before the message was complete",
                    type="api_error",
                    code="upstream_stream_error",
                ).sse()
            )
        out.append(SSE_DONE)
        self._ended = True
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            if self._data:
                raw = b"\n".join(self._data)
                name, self._event, self._data = self._event, "", []
                self._dispatch(name, raw, out)
            else:
                self._event = ""
            return
        if line.startswith(b":"):
            return  # SSE comment
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace").strip()

    # --- events -------------------------------------------------------------------------------
    def _dispatch(self, name: str, raw: bytes, out: list[bytes]) -> None:
        try:
            event = parse_json(raw)
        except ValueError:
            logger.warning("anthropic: skipped a stream event that is not JSON: %r", raw[:200])
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type") or name
        if not isinstance(kind, str) or (self._stopped and kind != "error"):
            return
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            return  # Unknown event types (and ping) are ignored, as Anthropic's versioning policy asks.
        try:
            handler(event, out)
        except ProviderError as exc:  # an answer that cannot be re-encoded
            self._on_error({"error": {"type": "api_error", "message": str(exc)}}, out)

    def _record_usage(self, reported) -> None:
        if isinstance(reported, dict):
            self._anthropic_usage.update(reported)
            self.usage = usage(self._anthropic_usage)

    def _on_message_start(self, event: dict, out: list[bytes]) -> None:
        message = _dict(event.get("message"))
        self.id = _text(message.get("id")) or self.id
        self.model = _text(message.get("model")) or self.model
        self._record_usage(message.get("usage"))
        out.append(self._chunk({"role": "assistant", "content": ""}))

    def _on_content_block_start(self, event: dict, out: list[bytes]) -> None:
        index = _index(event)
        block = _dict(event.get("content_block"))
        kind = block.get("type")
        if self._response_tool is not None and kind == "text":
            return
        if kind == "tool_use" and self._response_tool is not None and block.get("name") == self._response_tool:
            if self._answer_index is None:
                self._answer_index = index
            return
        if kind == "text":
            if _text(block.get("text")):
                out.append(self._chunk({"content": block["text"]}))
        elif kind == "tool_use":
            position = len(self._tool_index)
            self._tool_index[index] = position
            self._tool_has_args[index] = False
            call = {
                "index": position,
                "id": _text(block.get("id")),
                "type": "function",
                "function": {"name": _text(block.get("name")), "arguments": ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        elif kind == "thinking":
            self._thinking[index] = (self._thinking_count, [_text(block.get("thinking"))])
            self._thinking_count += 1
            if _text(block.get("thinking")):
                out.append(self._chunk({"reasoning_content": block["thinking"]}))
        elif kind == "redacted_thinking":
            ordinal = self._thinking_count
            self._thinking_count += 1
            redacted = {"index": ordinal, "type": "redacted_thinking", "data": _text(block.get("data"))}
            out.append(self._chunk({"thinking_blocks": [redacted]}))
        else:
            logger.warning("anthropic: dropped a %r content block from the stream", clean_text(repr(kind))[:50])

    def _on_content_block_delta(self, event: dict, out: list[bytes]) -> None:
        index = _index(event)
        delta = _dict(event.get("delta"))
        kind = delta.get("type")
        if index == self._answer_index and self._answer_index is not None:
            fragment = _text(delta.get("partial_json")) if kind == "input_json_delta" else ""
            if fragment:
                self._answer_has_json = True
                out.append(self._chunk({"content": fragment}))
            return
        if kind == "text_delta":
            if self._response_tool is not None:
                return
            if _text(delta.get("text")):
                out.append(self._chunk({"content": delta["text"]}))
        elif kind == "input_json_delta":
            fragment = _text(delta.get("partial_json"))
            if fragment and index in self._tool_index:
                self._tool_has_args[index] = True
                call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
                out.append(self._chunk({"tool_calls": [call]}))
        elif kind == "thinking_delta":
            if _text(delta.get("thinking")):
                if index in self._thinking:
                    self._thinking[index][1].append(delta["thinking"])
                out.append(self._chunk({"reasoning_content": delta["thinking"]}))
        elif kind == "signature_delta":
            # Sent once, at the end of a thinking block: emit the whole block, signed, so a
            # client can replay it as ``thinking_blocks`` on the next turn.
            ordinal, parts = self._thinking.get(index, (self._thinking_count, []))
            block = {
                "index": ordinal,
                "type": "thinking",
                "thinking": "".join(parts),
                "signature": _text(delta.get("signature")),
            }
            out.append(self._chunk({"thinking_blocks": [block]}))

    def _on_content_block_stop(self, event: dict, out: list[bytes]) -> None:
        index = _index(event)
        if index == self._answer_index and self._answer_index is not None and not self._answer_has_json:
            self._answer_has_json = True
            out.append(self._chunk({"content": "{}"}))
        if index in self._tool_index and not self._tool_has_args[index]:
            # A tool without parameters streams no JSON at all; OpenAI clients expect "{}".
            self._tool_has_args[index] = True
            out.append(
                self._chunk({"tool_calls": [{"index": self._tool_index[index], "function": {"arguments": "{}"}}]})
            )

    def _on_message_delta(self, event: dict, out: list[bytes]) -> None:
        self._record_usage(event.get("usage"))
        stop_reason = _dict(event.get("delta")).get("stop_reason")
        if stop_reason is not None:
            finish = finish_reason(stop_reason)
            if finish == "tool_calls" and self._answer_index is not None and not self._tool_index:
                finish = "stop"  # the tool call was the answer itself
            elif (
                self._response_tool is not None
                and self._answer_index is None
                and not self._tool_index
                and finish == "stop"
            ):
                # Prose where a schema was asked for must never pass as a success.
                message = "Anthropic answered without the forced response_format tool call"
                self._on_error({"error": {"type": "api_error", "message": message}}, out)
                return
            out.append(self._chunk({}, finish))

    def _on_message_stop(self, event: dict, out: list[bytes]) -> None:
        self._stopped = True
        if self.include_usage:
            out.append(
                frame(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": self.usage or usage({}),
                    }
                )
            )

    def _on_error(self, event: dict, out: list[bytes]) -> None:
        error = errors.stream_error(event.get("error"))
        logger.warning("anthropic: error event mid-stream: %s", error.message)
        out.append(error.sse())
        out.append(SSE_DONE)
        self._ended = self._upstream_error = True

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return frame(chunk)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _index(event: dict) -> int:
    """The content block index: an integer, else -1 (which matches no block)."""
    index = event.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else -1
