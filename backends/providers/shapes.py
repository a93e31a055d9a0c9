"""OpenAI response shapes that translating adapters produce (completion, chunk, usage, embeddings)."""

from __future__ import annotations

import base64
import json
import struct
import time

from backends.providers import validate
from backends.providers.base import SSE_DONE, InvalidRequestError, OpenAIError, ProviderError


def dumps(data, **options) -> bytes:
    """JSON for the client. Upstream strings may hold lone surrogates (``"\\ud800"`` parses in Python):
    they go out escaped, as the upstream sent them, instead of failing UTF-8 encoding. NaN and
    Infinity (which Python's parser accepts) are not JSON: an answer carrying them is unreadable."""
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, **options).encode()
    except UnicodeEncodeError:
        return json.dumps(data, allow_nan=False, **options).encode()
    except (RecursionError, ValueError, TypeError):
        raise ProviderError("the backend's answer cannot be re-encoded as JSON") from None


def count(value) -> int:
    """A token count from upstream JSON: a non-negative integer, else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return 0
    return int(value) if value < 2**53 else 0


def usage(prompt: int, completion: int, cached: int | None = None, reasoning: int | None = None) -> dict:
    """OpenAI usage; the details objects appear only for counts the provider reported."""
    result: dict = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached is not None:
        result["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return result


def wants_usage(payload) -> bool:
    """Whether the client asked for a usage chunk (``stream_options.include_usage: true``).

    Read leniently: the request was validated when it was translated, and a stream translator
    must not fail on what the request side already accepted.
    """
    options = payload.get("stream_options") if isinstance(payload, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def assistant_message(text: str, tool_calls: list[dict], reasoning: str = "") -> dict:
    """An OpenAI assistant message; content is null when the turn is only tool calls."""
    message: dict = {"role": "assistant", "content": text if text or not tool_calls else None, "refusal": None}
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
    return dumps(body)


def frame(data: dict) -> bytes:
    return b"data: " + dumps(data, separators=(",", ":")) + b"\n\n"


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


def embeddings_list(vectors, *, model: str, prompt_tokens: int, encoding_format: str | None) -> bytes:
    """OpenAI's ``/v1/embeddings`` answer; ``base64`` packs little-endian float32 as OpenAI does.

    ``vectors`` comes from the upstream: anything but arrays of numbers is a ``ProviderError``.
    """
    if not isinstance(vectors, list):
        raise ProviderError("the backend's embeddings are not an array")
    data = []
    for index, vector in enumerate(vectors):
        if not isinstance(vector, list):
            raise ProviderError(f"the backend's embedding {index} is not an array of numbers")
        try:
            # Packing checks every element is a number at C speed; float32 also rejects huge values.
            packed = struct.pack(f"<{len(vector)}f", *vector)
        except (struct.error, OverflowError, TypeError):
            raise ProviderError(f"the backend's embedding {index} is not an array of numbers") from None
        embedding: list[float] | str = vector
        if encoding_format == "base64":
            embedding = base64.b64encode(packed).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return dumps(body)


ENCODING_FORMATS = frozenset({"float", "base64"})


def embedding_texts(payload: dict) -> list[str]:
    """OpenAI ``input`` as a list of strings; token arrays cannot be translated (a 400 naming ``input``)."""
    value = payload.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidRequestError(
                    "this backend needs 'input' as a string or an array of strings (token arrays cannot be translated)",
                    f"input[{index}]",
                )
        return value
    raise InvalidRequestError("'input' must be a non-empty string or an array of strings", "input")


def embedding_options(payload) -> tuple[str, str | None, int | None]:
    """``model``, ``encoding_format`` and ``dimensions`` of an embeddings request, validated."""
    if not isinstance(payload, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    model = validate.string(payload.get("model"), "model", required=True, nonempty=True)
    encoding_format = validate.choice(payload.get("encoding_format"), "encoding_format", ENCODING_FORMATS)
    dimensions = validate.integer(payload.get("dimensions"), "dimensions", minimum=1)
    validate.string(payload.get("user"), "user")
    return model, encoding_format, dimensions
