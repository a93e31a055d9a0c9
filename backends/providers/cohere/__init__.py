"""Cohere's native v2 API: ``/v2/chat``, ``/v2/embed`` and ``/v1/models`` (``providers.md`` §3, §6.4).

The translation tables are in ``docs/translation/cohere.md``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from backends.providers.base import (
    ModelInfo,
    ModelPage,
    OpenAIError,
    Provider,
    UpstreamRequest,
    bearer_headers,
    model_path,
    parse_json,
)
from backends.providers.cohere import request, response
from backends.providers.cohere.stream import CohereStream
from backends.providers.content import upstream_name
from backends.providers.validate import encode_body

# Enough for Cohere's whole catalogue in one page; pagination is still followed.
MODELS_PAGE_SIZE = 1000


def host(url: str) -> str:
    """The backend's origin: Cohere URLs are written with or without a trailing ``/v1`` or ``/v2``."""
    base = url.rstrip("/")
    for suffix in ("/v1", "/v2"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class CohereProvider(Provider):
    kind = "cohere"

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        upstream = request.chat_body(payload)
        headers = bearer_headers(route)
        if upstream["stream"]:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest("POST", f"{host(route.url)}/v2/chat", headers, encode_body(upstream, payload))

    def chat_response(self, payload: dict, body: bytes) -> bytes:
        return response.chat_completion(payload, body)

    def chat_stream(self, payload: dict) -> CohereStream:
        return CohereStream(payload)

    def embeddings_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        upstream = request.embed_body(payload)
        return UpstreamRequest(
            "POST", f"{host(route.url)}/v2/embed", bearer_headers(route), encode_body(upstream, payload)
        )

    def embeddings_response(self, payload: dict, body: bytes) -> bytes:
        return response.embeddings(payload, body)

    def models_request(self, route, page_token: str | None = None) -> UpstreamRequest:
        query = {"page_size": MODELS_PAGE_SIZE}
        if page_token:
            query["page_token"] = page_token
        return UpstreamRequest(
            "GET", f"{host(route.url)}/v1/models?{urlencode(query)}", bearer_headers(route, content_type=False)
        )

    def model_request(self, route, model_id: str) -> UpstreamRequest:
        return UpstreamRequest(
            "GET", f"{host(route.url)}/v1/models/{model_path(model_id)}", bearer_headers(route, content_type=False)
        )

    def parse_model(self, route, body: bytes) -> ModelInfo:
        """``GET /v1/models/{name}``: ``{"name", "endpoints", ...}``, with no creation time."""
        data = parse_json(body)
        if not isinstance(data, dict) or not upstream_name(data.get("name")):
            raise ValueError("the answer is not a model object")
        return ModelInfo(data["name"], capability=response.model_capability(data))

    def parse_models(self, route, body: bytes) -> ModelPage:
        models, token = response.models(body)
        return ModelPage(models, self.models_request(route, token) if token else None)

    def error(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
        return response.error(status, body, headers)
