"""Reading an OpenAI ``chat.completion.chunk`` stream, for the dialects that answer in another
protocol (Anthropic Messages, OpenAI Responses).

``ChatChunkReader`` frames the SSE (bytes cut anywhere), decodes each ``data:`` payload and
knows how a chat stream ends: ``[DONE]`` after a ``finish_reason`` is a whole answer, anything
else is a failure. Subclasses turn chunks into their own events: ``_chunk`` for each parsed
chunk, ``_complete`` for a whole answer, ``_fail`` for an error; both of the last two set
``_ended``. ``feed``, ``close`` and ``error`` never raise.
"""

from __future__ import annotations

from backends.providers.base import OpenAIError, parse_json
from backends.providers.lines import LineFramedStream


class ChatChunkReader(LineFramedStream):
    # Named in the 502 for a stream that stops before its finish reason.
    answer_noun = "answer"

    def __init__(self) -> None:
        super().__init__()
        self._data: list[bytes] = []
        self._finish: str | None = None

    def _chunk(self, chunk, out: list[bytes]) -> None:
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
