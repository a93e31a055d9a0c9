"""Access to the recorded provider traffic in tests/fixtures/recorded."""

from __future__ import annotations

import json
from pathlib import Path

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "recorded"


def path(provider: str, name: str) -> Path:
    return RECORDED / provider / name


def raw(provider: str, name: str) -> bytes:
    return path(provider, name).read_bytes()


def interactions(provider: str, name: str) -> list[dict]:
    """The normalized request/response pairs of a recording."""
    return json.loads(raw(provider, f"{name}.json"))["interactions"]


def response(provider: str, name: str, index: int | None = None) -> bytes:
    """The decoded response body of a recording (``NAME[.N].response.*``)."""
    stem = f"{name}.{index}" if index is not None else name
    for suffix in ("sse", "json", "ndjson"):
        candidate = path(provider, f"{stem}.response.{suffix}")
        if candidate.exists():
            return candidate.read_bytes()
    raise FileNotFoundError(f"no recorded response for {provider}/{stem}")


def chunks_as_sse(provider: str, name: str, *, done: bool = True) -> bytes:
    """A ``*_chunks_only.chunks.jsonl`` recording re-framed as OpenAI SSE."""
    lines = [line for line in raw(provider, f"{name}.chunks.jsonl").splitlines() if line.strip()]
    body = b"".join(b"data: " + line + b"\n\n" for line in lines)
    return body + (b"data: [DONE]\n\n" if done else b"")


def sse_frames(body: bytes) -> list[bytes]:
    """Split an SSE body into its events, each with its trailing blank line."""
    text = body.replace(b"\r\n", b"\n")
    return [frame + b"\n\n" for frame in text.split(b"\n\n") if frame.strip()]


def json_body(provider: str, name: str) -> dict:
    return json.loads(raw(provider, f"{name}.json"))
