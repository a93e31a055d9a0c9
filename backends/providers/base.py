"""The contract every provider adapter fulfils.

Adapters are sans-IO: they turn OpenAI-shaped payloads into ``UpstreamRequest`` values and
upstream bytes back into OpenAI-shaped bytes. The gateway (async) and the Celery tasks (sync)
do the IO, so one adapter serves both.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, ClassVar, Protocol
from urllib.parse import quote

from backends import capabilities

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
    # What the model is for (``backends.capabilities``); "" when neither the provider nor the
    # id says.
    capability: str = ""


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

    def __post_init__(self) -> None:
        # Errors are built from upstream bytes and client input: whatever arrived, the client gets
        # a string message and type, a string (or no) param and a string or integer (or no) code.
        object.__setattr__(self, "message", clean_text(self.message) or f"upstream returned HTTP {self.status}")
        object.__setattr__(self, "type", clean_text(self.type))
        param = self.param
        object.__setattr__(self, "param", clean_text(param) if isinstance(param, str) and param else None)
        code = self.code
        if isinstance(code, bool) or not isinstance(code, (str, int)):
            code = None
        object.__setattr__(self, "code", clean_text(code) if isinstance(code, str) else code)
        retry_after = self.retry_after
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)) or not math.isfinite(retry_after):
            retry_after = None
        object.__setattr__(self, "retry_after", None if retry_after is None else max(0.0, float(retry_after)))

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
    """Upstream answered with something the adapter cannot understand (the gateway answers 502)."""


class InvalidRequestError(ProviderError):
    """The client's request cannot be translated: the gateway answers 400 ``invalid_request_error``.

    ``param`` is the dotted path of the offending field, as OpenAI names it
    (``tools``, ``messages[2].content[0].image_url``), or None when no single field is to blame.
    ``code`` is the error's ``code`` in the answer.
    """

    def __init__(self, message: str, param: str | None = None, *, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def clean_text(value) -> str:
    """``value`` as a string that encodes to UTF-8: lone surrogates (JSON ``"\\ud800"``) become U+FFFD."""
    if not isinstance(value, str):
        return ""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
    return value


class StreamTranslator(Protocol):
    """Turns a provider's stream into OpenAI SSE frames, one feed at a time.

    ``feed`` and ``close`` never raise: whatever the upstream sends ends, at worst, in an
    OpenAI error event and ``data: [DONE]``. ``usage`` is the OpenAI-shaped usage object once
    the provider has reported it (whether or not the client asked for a usage chunk), else None.
    """

    usage: dict | None

    def feed(self, data: bytes) -> list[bytes]:
        """Consume raw upstream bytes; return complete SSE frames ready for the client."""

    def close(self) -> list[bytes]:
        """Upstream ended. Return the remaining frames, ending with ``data: [DONE]``."""


class Provider:
    """Base adapter. Subclasses override what their wire format needs."""

    kind: ClassVar[str] = ""
    # Passthrough adapters speak OpenAI upstream: the gateway relays bytes untouched.
    passthrough: ClassVar[bool] = False
    # Adapters that relay their backend's own answer read its usage themselves (answer_usage).
    reads_own_usage: ClassVar[bool] = False

    # --- chat ---------------------------------------------------------------------------
    def chat_request(self, route: BackendRoute, payload: dict, body: bytes) -> UpstreamRequest:
        raise NotImplementedError

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        """Translate a complete, successful upstream answer to an OpenAI chat completion."""
        return body

    def answer_usage(self, body: bytes) -> dict | None:
        """OpenAI-shaped usage of an answer relayed in the backend's own format (when
        ``reads_own_usage``); raises ValueError for an answer that is not a JSON object."""
        raise NotImplementedError

    def chat_stream(self, payload: dict) -> StreamTranslator:
        raise NotImplementedError

    def stream_translator(self, route: BackendRoute, payload: dict) -> StreamTranslator | None:
        """The translator for this stream, or None to relay the upstream bytes untouched."""
        return None if self.passthrough else self.chat_stream(payload)

    # --- embeddings -----------------------------------------------------------------------
    def embeddings_request(self, route: BackendRoute, payload: dict, body: bytes) -> UpstreamRequest:
        raise InvalidRequestError(f"{self.kind} backends do not serve embeddings", "model")

    def embeddings_response(self, payload: dict, body: bytes) -> bytes:
        return body

    # --- legacy text completions (/v1/completions) ------------------------------------------
    def completions_request(self, route: BackendRoute, payload: dict, body: bytes) -> UpstreamRequest:
        """Only OpenAI-compatible backends serve ``/v1/completions``: it is passed through, never translated."""
        raise InvalidRequestError(
            f"{self.kind} backends do not serve /v1/completions (legacy text completions); "
            "use /v1/chat/completions for this model",
            "model",
        )

    def completions_response(self, payload: dict, body: bytes) -> bytes:
        return body

    # --- discovery and health -------------------------------------------------------------
    def models_request(self, route: BackendRoute) -> UpstreamRequest:
        raise NotImplementedError

    def parse_models(self, route: BackendRoute, body: bytes) -> ModelPage:
        raise NotImplementedError

    # --- one model (GET /v1/models/{id} for a model no backend lists) ----------------------
    def model_request(self, route: BackendRoute, model_id: str) -> UpstreamRequest:
        """OpenAI's ``GET {url}/models/{id}``; adapters whose API differs override it."""
        return UpstreamRequest(
            "GET", f"{route.url}/models/{model_path(model_id)}", bearer_headers(route, content_type=False)
        )

    def parse_model(self, route: BackendRoute, body: bytes) -> ModelInfo:
        """The answer to ``model_request``; ``ValueError`` when it is not a model object."""
        data = parse_json(body)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ValueError("the answer is not a model object")
        return ModelInfo(data["id"], epoch_seconds(data.get("created")), capabilities.from_id(data["id"]))

    # --- errors ---------------------------------------------------------------------------
    def error(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
        """Map an upstream error answer to the OpenAI shape, keeping its status."""
        return generic_error(status, body, headers)


# RFC 9110 delta-seconds (a fraction is tolerated: some providers send "0.5").
_DELTA_SECONDS = re.compile(r"\s*\d+(\.\d+)?\s*")


def retry_after_seconds(headers, now: datetime | None = None) -> float | None:
    """Seconds to wait named by ``retry-after-ms``, else ``retry-after`` (delta-seconds or an HTTP-date).

    Always a finite float >= 0, or None when absent or unreadable (``inf``, ``nan``, ``1e400``,
    negative numbers and garbage are unreadable). Capping large values is the caller's policy.
    """
    if not headers:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        value = headers.get("retry-after")
    except (AttributeError, TypeError):
        return None
    if isinstance(milliseconds, str) and _DELTA_SECONDS.fullmatch(milliseconds):
        seconds = float(milliseconds) / 1000
        if math.isfinite(seconds):
            return seconds
    if not isinstance(value, str) or not value.strip():
        return None
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322 §3.3)
        when = when.replace(tzinfo=UTC)
    try:
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    except OverflowError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_json(body: bytes):
    """Upstream JSON, or ``ValueError`` for anything unreadable (including nesting too deep to parse)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def answer_object(body: bytes) -> dict:
    """A relayed answer's JSON object, for reading its usage; ``ValueError`` when it is not one
    (a 2xx that is not what it claims: an HTML page, a truncated body)."""
    try:
        data = parse_json(body)
    except TypeError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def generic_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
    """Best-effort reading of the error envelopes seen across providers; never raises."""
    retry_after = retry_after_seconds(headers)
    fallback = f"upstream returned HTTP {status}"
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        text = body.decode("utf-8", "replace").strip()[:500] if isinstance(body, bytes) else ""
        return OpenAIError(status, text or fallback, retry_after=retry_after)
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict):
            message = inner.get("message")
            if not isinstance(message, str) or not message:
                message = inner.get("type") if isinstance(inner.get("type"), str) else ""
            return OpenAIError(
                status,
                message or fallback,
                type=_string(inner.get("type")),
                param=inner.get("param") if isinstance(inner.get("param"), str) else None,
                code=inner.get("code"),
                retry_after=retry_after,
            )
        message = inner if isinstance(inner, str) and inner else data.get("message") or data.get("detail")
        if message:
            return OpenAIError(
                status,
                message if isinstance(message, str) else _compact(message) or fallback,
                type=_string(data.get("type")),
                param=data.get("param") if isinstance(data.get("param"), str) else None,
                code=data.get("code"),
                retry_after=retry_after,
            )
    return OpenAIError(status, fallback, retry_after=retry_after)


def model_path(model_id: str) -> str:
    """A model id as a URL path: ``/`` kept (``meta-llama/Llama-3``, as the OpenAI SDK sends it),
    everything else that is not a plain character escaped. The caller refuses ``.``/``..`` segments."""
    return quote(model_id, safe="/:@")


def epoch_seconds(value) -> int | None:
    """A Unix time from upstream JSON: a positive integer below 2**63, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        return None
    return value


def _string(value) -> str:
    return value if isinstance(value, str) else ""


def _compact(value) -> str:
    """A JSON value as JSON text, or "" when it cannot be written."""
    try:
        return json.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return ""


def bearer_headers(route: BackendRoute, content_type: bool = True) -> dict[str, str]:
    headers = dict(route.headers)
    if content_type:
        headers["content-type"] = "application/json"
    # SSE must reach us as the provider writes it; compressed streams arrive in bursts.
    headers["accept-encoding"] = "identity"
    if route.api_key:
        headers["authorization"] = f"Bearer {route.api_key}"
    return headers
