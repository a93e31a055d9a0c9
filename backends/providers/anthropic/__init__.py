"""Native Anthropic Messages API adapter (``providers.md`` §2 and §6.1-6.3).

The translation, field by field, is documented in ``docs/translation/anthropic.md``.
Submodules: ``request`` (OpenAI -> Anthropic body), ``response`` (answer -> chat.completion),
``stream`` (SSE events -> chunks), ``errors`` (error envelopes).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from backends import capabilities
from backends.providers.anthropic import errors, request, response
from backends.providers.anthropic.stream import AnthropicStream
from backends.providers.base import (
    ModelInfo,
    ModelPage,
    OpenAIError,
    Provider,
    UpstreamRequest,
    model_path,
    parse_json,
)
from backends.providers.content import model_items, upstream_name
from backends.providers.validate import encode_body

ANTHROPIC_VERSION = "2023-06-01"
# The largest page GET /v1/models serves.
MODELS_PAGE_SIZE = 1000


def anthropic_headers(route, content_type: bool = True) -> dict[str, str]:
    """Auth and version headers; the backend's own headers may override the version or add a beta."""
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if content_type:
        headers["content-type"] = "application/json"
    headers.update((name.lower(), value) for name, value in route.headers)
    # SSE must reach us as Anthropic writes it; compressed streams arrive in bursts.
    headers["accept-encoding"] = "identity"
    if route.api_key:
        headers["x-api-key"] = route.api_key
    return headers


class AnthropicProvider(Provider):
    kind = "anthropic"
    passthrough = False

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        content = encode_body(request.build_body(payload), payload)
        return UpstreamRequest("POST", f"{route.url}/messages", anthropic_headers(route), content)

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        return response.completion(payload, body)

    def chat_stream(self, payload: dict) -> AnthropicStream:
        return AnthropicStream(payload)

    def error(self, status: int, body: bytes, headers=None) -> OpenAIError:
        return errors.error(status, body, headers)

    def models_request(self, route, after_id: str | None = None) -> UpstreamRequest:
        query = {"limit": MODELS_PAGE_SIZE}
        if after_id:
            query["after_id"] = after_id
        return UpstreamRequest(
            "GET", f"{route.url}/models?{urlencode(query)}", anthropic_headers(route, content_type=False)
        )

    def model_request(self, route, model_id: str) -> UpstreamRequest:
        return UpstreamRequest(
            "GET", f"{route.url}/models/{model_path(model_id)}", anthropic_headers(route, content_type=False)
        )

    def parse_model(self, route, body: bytes) -> ModelInfo:
        """``{"type": "model", "id", "display_name", "created_at"}`` (RFC 3339)."""
        data = parse_json(body)
        if not isinstance(data, dict) or not upstream_name(data.get("id")):
            raise ValueError("the answer is not a model object")
        return ModelInfo(data["id"], _epoch(data.get("created_at")), capabilities.CHAT)

    def parse_models(self, route, body: bytes) -> ModelPage:
        data, items = model_items(body, "data")
        models = [
            # Every Anthropic model is a chat (Messages) model.
            ModelInfo(item["id"], _epoch(item.get("created_at")), capabilities.CHAT)
            for item in items
            if isinstance(item, dict) and upstream_name(item.get("id"))
        ]
        next_request = None
        last_id = upstream_name(data.get("last_id"))
        if data.get("has_more") is True and last_id:
            next_request = self.models_request(route, after_id=last_id)
        return ModelPage(models, next_request)


def _epoch(value) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except (ValueError, OverflowError, OSError):
        return None
