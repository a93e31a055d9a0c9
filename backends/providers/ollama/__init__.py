"""Ollama's native API: ``/api/chat``, ``/api/embed`` and ``/api/tags`` (``providers.md`` §4, §6.5).

A key is optional; when set it goes out as a Bearer token, which Ollama Cloud needs. The
translation tables are in ``docs/translation/ollama.md``.
"""

from __future__ import annotations

import json

from backends.providers.base import (
    ModelInfo,
    ModelPage,
    OpenAIError,
    Provider,
    UpstreamRequest,
    bearer_headers,
    parse_json,
)
from backends.providers.ollama import request, response
from backends.providers.ollama.stream import OllamaStream
from backends.providers.validate import encode_body


def base_url(url: str) -> str:
    """The server root: URLs may be written with Ollama's ``/v1`` (OpenAI layer) or ``/api`` suffix."""
    base = url.rstrip("/")
    for suffix in ("/v1", "/api"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class OllamaProvider(Provider):
    kind = "ollama"

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        upstream = request.chat_body(payload)
        return UpstreamRequest(
            "POST", f"{base_url(route.url)}/api/chat", bearer_headers(route), encode_body(upstream, payload)
        )

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        return response.chat_completion(payload, body)

    def chat_stream(self, payload: dict) -> OllamaStream:
        return OllamaStream(payload)

    def embeddings_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        upstream = request.embed_body(payload)
        return UpstreamRequest(
            "POST", f"{base_url(route.url)}/api/embed", bearer_headers(route), encode_body(upstream, payload)
        )

    def embeddings_response(self, payload: dict, body: bytes) -> bytes:
        return response.embeddings(payload, body)

    def models_request(self, route) -> UpstreamRequest:
        return UpstreamRequest("GET", f"{base_url(route.url)}/api/tags", bearer_headers(route, content_type=False))

    def model_request(self, route, model_id: str) -> UpstreamRequest:
        """Ollama has no ``GET`` for one model: ``POST /api/show`` answers 404 for one it lacks."""
        body = json.dumps({"model": model_id}).encode()
        return UpstreamRequest("POST", f"{base_url(route.url)}/api/show", bearer_headers(route), body)

    def parse_model(self, route, body: bytes) -> ModelInfo:
        data = parse_json(body)
        if not isinstance(data, dict):
            raise ValueError("the answer is not a model object")
        return ModelInfo("", response.created(data.get("modified_at")), response.capability(data))

    def parse_models(self, route, body: bytes) -> ModelPage:
        return ModelPage(response.models(body))

    def error(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
        return response.error(status, body, headers)
