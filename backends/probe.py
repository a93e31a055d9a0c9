"""Live checks of one backend over its model-list endpoint (costs no tokens).

Synchronous on purpose: it runs in Celery workers and at start-up, never on the hot path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from backends.providers import provider_for
from backends.providers.base import ModelInfo, ProviderError
from backends.redaction import redact
from backends.snapshot import BackendRoute

# A provider that paginates forever must not keep a worker busy.
MAX_MODEL_PAGES = 50


@dataclass(frozen=True)
class ProbeResult:
    status: str  # a HealthStatus value
    latency_ms: float | None = None
    http_status: int | None = None
    error: str = ""
    models: list[ModelInfo] = field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return self.http_status is not None


def probe(route: BackendRoute, *, timeout: float) -> ProbeResult:
    """Fetch the backend's model list, timing the first answer and classifying failures."""
    provider = provider_for(route.kind)
    request = provider.models_request(route)
    models: list[ModelInfo] = []
    latency_ms = None
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_MODEL_PAGES):
            started = time.perf_counter()
            try:
                response = client.request(request.method, request.url, headers=request.headers, content=request.content)
            except httpx.TimeoutException:
                return ProbeResult("unhealthy", error=f"timed out after {timeout:g}s")
            except httpx.HTTPError as exc:
                return ProbeResult("unhealthy", error=f"cannot connect: {type(exc).__name__}")
            if latency_ms is None:
                latency_ms = round((time.perf_counter() - started) * 1000, 1)
            if 300 <= response.status_code < 400:
                location = response.headers.get("location", "elsewhere")
                error = f"HTTP {response.status_code}: redirected to {location}; check the backend's URL"
                return ProbeResult("unhealthy", latency_ms, response.status_code, error)
            if response.status_code >= 400:
                mapped = provider.error(response.status_code, response.content, dict(response.headers))
                status = "auth_failed" if mapped.status in (401, 403) else "unhealthy"
                message = redact(mapped.message, route.api_key)
                return ProbeResult(status, latency_ms, response.status_code, f"HTTP {response.status_code}: {message}")
            try:
                page = provider.parse_models(route, response.content)
            except ProviderError as exc:
                return ProbeResult("unhealthy", latency_ms, response.status_code, str(exc))
            models.extend(page.models)
            if page.next_request is None:
                break
            request = page.next_request
    return ProbeResult("healthy", latency_ms, 200, models=models)
