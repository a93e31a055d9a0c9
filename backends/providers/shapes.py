"""OpenAI response shapes that translating adapters produce (completion, chunk, usage, embeddings)."""

from __future__ import annotations

import base64
import json
import struct
import time

from backends.providers.base import SSE_DONE, OpenAIError


def usage(prompt: int, completion: int, cached: int | None = None) -> dict:
    result = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached:
        result["prompt_tokens_details"] = {"cached_tokens": cached}
    return result


def assistant_message(text: str, tool_calls: list[dict], reasoning: str = "") -> dict:
    """An OpenAI assistant message; content is null when the turn is only tool calls."""
    message: dict = {"role": "assistant", "content": text if text or not tool_calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def completion(*, id: str, model: str, message: dict, finish_reason: str, usage: dict | None) -> bytes:
    body = {
        "id": id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body, ensure_ascii=False).encode()


def frame(data: dict) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class ChunkWriter:
    """Builds ``chat.completion.chunk`` frames that share one id, model and created time."""

    def __init__(self, model: str, id: str) -> None:
        self.model = model
        self.id = id
        self.created = int(time.time())

    def delta(self, delta: dict, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return frame(self._base([choice]))

    def usage(self, usage: dict) -> bytes:
        return frame({**self._base([]), "usage": usage})

    def _base(self, choices: list) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }


def error_frames(error: OpenAIError) -> list[bytes]:
    return [error.sse(), SSE_DONE]


def embeddings_list(
    vectors: list[list[float]], *, model: str, prompt_tokens: int, encoding_format: str | None
) -> bytes:
    """OpenAI's ``/v1/embeddings`` answer; ``base64`` packs little-endian float32 as OpenAI does."""
    data = []
    for index, vector in enumerate(vectors):
        embedding: list[float] | str = vector
        if encoding_format == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return json.dumps(body).encode()


def embedding_texts(payload: dict) -> list[str]:
    """OpenAI ``input`` as a list of strings; token arrays cannot be translated."""
    value = payload.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    return []
