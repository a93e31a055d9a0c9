"""OpenAI-compatible upstreams (OpenAI, xAI, DeepSeek, Groq, Together, Fireworks, Mistral, …).

The request body goes upstream byte for byte and answers are relayed untouched; only the
quirks that would break an OpenAI client are adapted (``providers.md`` §5).
"""

from __future__ import annotations

import json

from backends.providers.base import (
    ModelInfo,
    ModelPage,
    OpenAIError,
    Provider,
    ProviderError,
    UpstreamRequest,
    bearer_headers,
    generic_error,
)


class OpenAICompatibleProvider(Provider):
    kind = "openai_compatible"
    passthrough = True

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{route.url}/chat/completions", bearer_headers(route), body)

    def embeddings_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{route.url}/embeddings", bearer_headers(route), body)

    def models_request(self, route) -> UpstreamRequest:
        return UpstreamRequest("GET", f"{route.url}/models", bearer_headers(route, content_type=False))

    def parse_models(self, route, body: bytes) -> ModelPage:
        try:
            data = json.loads(body)
        except ValueError:
            raise ProviderError("model list is not JSON") from None
        # Together answers with a bare array instead of {"object": "list", "data": [...]}.
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ProviderError("model list has no 'data' array")
        models = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
                created = item.get("created")
                models.append(ModelInfo(item["id"], created if isinstance(created, int) else None))
        return ModelPage(models)

    def error(self, status: int, body: bytes, headers=None) -> OpenAIError:
        mapped = generic_error(status, body, headers)
        # xAI answers a bad key with 400 {"code": "invalid-argument", "error": "Incorrect API key…"}.
        if status == 400 and "api key" in mapped.message.lower() and mapped.code in ("invalid-argument", None):
            return OpenAIError(401, mapped.message, type="authentication_error", code="invalid_api_key")
        return mapped
