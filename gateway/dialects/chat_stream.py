"""Reading an OpenAI ``chat.completion.chunk`` stream, for the dialects that answer in another
protocol (Anthropic Messages, OpenAI Responses).

``ChatChunkReader`` frames the SSE (bytes cut anywhere), decodes each ``data:`` payload and
knows how a chat stream ends: ``[DONE]`` after a ``finish_reason`` is a whole answer, anything
else is a failure. It also reads each chunk (usage, the first choice's delta, the finish reason,
an error mid-stream) and hands the parts to the subclass, which turns them into its own events:
``_start`` before the first, ``_reasoning_delta``, ``_content_delta``, ``_other_delta`` and
``_tool_delta`` for a delta's parts in that order, ``_finished`` at the finish reason,
``_complete`` for a whole answer and ``_fail`` for an error (both of the last two set
``_ended``). ``feed``, ``close`` and ``error`` never raise.
"""

from __future__ import annotations

from backends.providers.base import OpenAIError, clean_text, parse_json
from backends.providers.lines import LineFramedStream


class ChatChunkReader(LineFramedStream):
    # Named in the 502 for a stream that stops before its finish reason.
    answer_noun = "answer"
    # The status of an error an upstream reports mid-stream without an HTTP-like code.
    upstream_error_status = 500

    def __init__(self) -> None:
        super().__init__()
        # The OpenAI-shaped usage once reported, for the gateway's accounting.
        self.usage: dict | None = None
        self._data: list[bytes] = []
        self._finish: str | None = None

    # --- what subclasses turn into events -----------------------------------------------------
    def _start(self, chunk: dict, out: list[bytes]) -> None:
        raise NotImplementedError

    def _reasoning_delta(self, text: str, out: list[bytes]) -> None:
        raise NotImplementedError

    def _content_delta(self, text: str, out: list[bytes]) -> None:
        raise NotImplementedError

    def _other_delta(self, delta: dict, out: list[bytes]) -> None:
        """Fields of a delta only some dialects carry (Anthropic's ``thinking_blocks``)."""

    def _tool_delta(self, call: dict, position: int, out: list[bytes]) -> None:
        raise NotImplementedError

    def _finished(self, out: list[bytes]) -> None:
        raise NotImplementedError

    def _complete(self, out: list[bytes]) -> None:
        raise NotImplementedError

    def _fail(self, error: OpenAIError, out: list[bytes]) -> None:
        raise NotImplementedError

    def feed(self, data: bytes) -> list[bytes]:
        return self._feed_lines(data)

    def close(self) -> list[bytes]:
        """The upstream ended: the remaining events (at least one, unless it had ended)."""
        if self._ended:
            return []
        out: list[bytes] = []
        self._close_lines(out)
        if self._ended:
            return out
        if self._finish is None:
            incomplete = f"the backend ended the stream before the {self.answer_noun} was complete"
            self._fail(OpenAIError(502, incomplete), out)
        else:
            self._complete(out)  # finish_reason came, [DONE] did not: the answer is whole
        return out

    def error(self, error: OpenAIError) -> list[bytes]:
        """End the stream with an error event (the relay's failures: timeouts, resets)."""
        if self._ended:
            return []
        out: list[bytes] = []
        self._fail(error, out)
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            if self._data:
                raw, self._data = b"\n".join(self._data), []
                self._payload(raw, out)
            return
        if line.startswith(b":"):
            return  # SSE comment
        field, _, value = line.partition(b":")
        if field == b"data":
            self._data.append(value[1:] if value.startswith(b" ") else value)

    def _payload(self, raw: bytes, out: list[bytes]) -> None:
        if raw.strip() == b"[DONE]":
            if self._finish is None:
                self._fail(OpenAIError(502, "the backend ended the stream without a finish reason"), out)
            else:
                self._complete(out)
            return
        try:
            chunk = parse_json(raw)
        except (ValueError, UnicodeDecodeError):
            self._fail(OpenAIError(502, "the backend sent a stream event that is not JSON"), out)
            return
        self._chunk(chunk, out)

    # --- chunks -------------------------------------------------------------------------------
    def _chunk(self, chunk, out: list[bytes]) -> None:
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            self._upstream_error(chunk["error"], out)
            return
        self._start(chunk, out)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        for key in ("reasoning_content", "reasoning"):
            if text_of(delta.get(key)):
                self._reasoning_delta(delta[key], out)
                break
        if text_of(delta.get("content")):
            self._content_delta(delta["content"], out)
        self._other_delta(delta, out)
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict):
                self._tool_delta(call, position, out)
        if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
            self._finish = choice["finish_reason"]
            self._finished(out)

    def _upstream_error(self, inner, out: list[bytes]) -> None:
        """An ``error`` object in the stream: its message, and its code when it is a status."""
        message = inner.get("message") if isinstance(inner, dict) else inner
        status = self.upstream_error_status
        if isinstance(inner, dict) and isinstance(inner.get("code"), int) and 400 <= inner["code"] <= 599:
            status = inner["code"]
        text = clean_text(message) if isinstance(message, str) else ""
        self._fail(OpenAIError(status, text or "the backend reported an error mid-stream"), out)


def text_of(value) -> str:
    return value if isinstance(value, str) else ""
