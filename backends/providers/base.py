"""The contract every provider adapter fulfils.

Adapters are sans-IO: they turn OpenAI-shaped payloads into ``UpstreamRequest`` values and
upstream bytes back into OpenAI-shaped bytes. The gateway (async) and the Celery tasks (sync)
do the IO, so one adapter serves both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from backends.snapshot import BackendRoute

SSE_DONE = b"data: [DONE]\n\n"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    created: int | None = None
    # "chat" or "embedding".
    capability: str = "chat"


@dataclass(frozen=True, slots=True)
class ModelPage:
    models: list[ModelInfo]
    # Set when the provider paginates its model list; the caller fetches it next.
    next_request: UpstreamRequest | None = None


@dataclass(frozen=True, slots=True)
class OpenAIError:
    """An error in OpenAI's shape, with the HTTP status the client should see."""

    status: int
    message: str
    type: str = ""
    param: str | None = None
    code: str | int | None = None
    retry_after: float | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type or error_type_for(self.status),
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return json.dumps(self.as_dict()).encode()

    def sse(self) -> bytes:
        return b"data: " + self.body() + b"\n\n"


def error_type_for(status: int) -> str:
    if status >= 500:
        return "api_error"
    return ERROR_TYPES.get(status, "invalid_request_error")


class ProviderError(Exception):
    """Upstream answered with something the adapter cannot understand."""


class StreamTranslator(Protocol):
    """Turns a provider's stream into OpenAI SSE frames, one feed at a time."""

    def feed(self, data: bytes) -> list[bytes]:
        """Consume raw upstream bytes; return complete SSE frames ready for the client."""

    def close(self) -> list[bytes]:
        """Upstream ended. Return the remaining frames, ending with ``data: [DONE]``."""


class Provider:
    """Base adapter. Subclasses override what their wire format needs."""

    kind: ClassVar[str] = ""
    # Passthrough adapters speak OpenAI upstream: the gateway relays bytes untouched.
    passthrough: ClassVar[bool] = False

    # --- chat ---------------------------------------------------------------------------
    def chat_request(self, route: BackendRoute, payload: dict, body: bytes) -> UpstreamRequest:
        raise NotImplementedError

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        """Translate a complete, successful upstream answer to an OpenAI chat completion."""
        return body

    def chat_stream(self, payload: dict) -> StreamTranslator:
        raise NotImplementedError

    def stream_translator(self, route: BackendRoute, payload: dict) -> StreamTranslator | None:
        """The translator for this stream, or None to relay the upstream bytes untouched."""
        return None if self.passthrough else self.chat_stream(payload)

    # --- embeddings -----------------------------------------------------------------------
    def embeddings_request(self, route: BackendRoute, payload: dict, body: bytes) -> UpstreamRequest:
        raise ProviderError(f"{self.kind} backends do not serve embeddings")

    def embeddings_response(self, payload: dict, body: bytes) -> bytes:
        return body

    # --- discovery and health -------------------------------------------------------------
    def models_request(self, route: BackendRoute) -> UpstreamRequest:
        raise NotImplementedError

    def parse_models(self, route: BackendRoute, body: bytes) -> ModelPage:
        raise NotImplementedError

    # --- errors ---------------------------------------------------------------------------
    def error(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
        """Map an upstream error answer to the OpenAI shape, keeping its status."""
        return generic_error(status, body, headers)


def retry_after_seconds(headers: dict[str, str] | None) -> float | None:
    """Seconds named by ``retry-after-ms`` / ``retry-after`` (numeric form only)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def generic_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
    """Best-effort reading of the error envelopes seen across providers."""
    retry_after = retry_after_seconds(headers)
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()[:500] or f"upstream returned HTTP {status}"
        return OpenAIError(status, text, retry_after=retry_after)
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict):
            return OpenAIError(
                status,
                str(inner.get("message") or inner.get("type") or f"upstream returned HTTP {status}"),
                type=str(inner.get("type") or ""),
                param=inner.get("param"),
                code=inner.get("code"),
                retry_after=retry_after,
            )
        message = inner if isinstance(inner, str) else data.get("message") or data.get("detail")
        if message:
            code = data.get("code")
            return OpenAIError(
                status,
                message if isinstance(message, str) else json.dumps(message),
                type=str(data.get("type") or ""),
                param=data.get("param"),
                code=code if isinstance(code, (str, int)) else None,
                retry_after=retry_after,
            )
    return OpenAIError(status, f"upstream returned HTTP {status}", retry_after=retry_after)


def bearer_headers(route: BackendRoute, content_type: bool = True) -> dict[str, str]:
    headers = dict(route.headers)
    if content_type:
        headers["content-type"] = "application/json"
    # SSE must reach us as the provider writes it; compressed streams arrive in bursts.
    headers["accept-encoding"] = "identity"
    if route.api_key:
        headers["authorization"] = f"Bearer {route.api_key}"
    return headers
