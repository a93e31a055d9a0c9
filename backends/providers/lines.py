"""SSE read line by line from bytes cut anywhere: what every stream translator starts from."""

from __future__ import annotations


class LineFramedStream:
    """Hands each complete line (without its ``\\r\\n``) to ``_line(line, out)``, and stops once
    ``_ended`` is set. Subclasses call ``super().__init__()`` and implement ``_line``."""

    def __init__(self) -> None:
        self._buffer = b""
        self._ended = False

    def _line(self, line: bytes, out: list[bytes]) -> None:
        raise NotImplementedError

    def _feed_lines(self, data: bytes) -> list[bytes]:
        if self._ended or not data:
            return []
        self._buffer += data
        if b"\n" not in self._buffer:
            return []
        *lines, self._buffer = self._buffer.split(b"\n")
        out: list[bytes] = []
        for line in lines:
            self._line(line.rstrip(b"\r"), out)
            if self._ended:
                break
        return out

    def _close_lines(self, out: list[bytes]) -> None:
        """The upstream ended: a last line without its newline is still a line, and the end of
        the stream ends the event in progress (a blank line)."""
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r"), out)
            self._buffer = b""
        if not self._ended:
            self._line(b"", out)
