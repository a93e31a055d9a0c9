"""Reads. The routing snapshot is built here, off the request path."""

from __future__ import annotations

import logging

from django.conf import settings

from backends.crypto import KeyDecryptionError
from backends.models import Backend, DiscoveredModel, GatewaySettings, WorkerIdentity
from backends.snapshot import BackendRoute, RoutingSnapshot, snapshot_assemble

logger = logging.getLogger(__name__)


def gateway_settings_get() -> GatewaySettings:
    settings_row, _ = GatewaySettings.objects.get_or_create(pk=1)
    return settings_row


def routing_version_get() -> int:
    version = GatewaySettings.objects.filter(pk=1).values_list("routing_version", flat=True).first()
    return version if version is not None else 0


def backend_list() -> list[Backend]:
    return list(Backend.objects.all())


def backend_model_counts() -> dict[int, int]:
    from django.db.models import Count

    return dict(Backend.objects.annotate(n=Count("models")).values_list("id", "n"))


def backend_route(backend: Backend, *, model_count: int = 0) -> BackendRoute:
    """The snapshot form of one backend, with its key decrypted for use upstream."""
    last_error = backend.last_error
    try:
        api_key = backend.api_key
    except KeyDecryptionError as exc:
        api_key, last_error = "", str(exc)
        logger.error("backend %s: %s", backend.name, exc)
    healthy_since = (
        backend.last_checked_at.timestamp() if backend.last_checked_at and backend.health_status == "healthy" else None
    )
    return BackendRoute(
        name=backend.name,
        kind=backend.kind,
        url=backend.url.rstrip("/"),
        api_key=api_key,
        api_key_hint=backend.api_key_hint,
        headers=tuple((str(k).lower(), str(v)) for k, v in (backend.headers or {}).items()),
        priority=backend.priority,
        enabled=backend.enabled,
        source=backend.source,
        health=backend.health_status,
        latency_ms=backend.latency_ms,
        last_error=last_error,
        healthy_since=healthy_since,
        model_count=model_count,
    )


def routing_snapshot_build() -> RoutingSnapshot:
    """Everything the hot path needs, read in a few queries and frozen."""
    version = routing_version_get()
    gateway = gateway_settings_get()
    worker = WorkerIdentity.objects.filter(instance=settings.ELDRIC_INSTANCE).first()
    backends = backend_list()
    models: dict[str, list[tuple[str, int | None]]] = {}
    for backend_name, model_id, created in DiscoveredModel.objects.values_list("backend__name", "model_id", "created"):
        models.setdefault(backend_name, []).append((model_id, created))
    routes = [backend_route(b, model_count=len(models.get(b.name, ()))) for b in backends]
    default_backend = gateway.default_backend or (routes[0].name if routes else "")
    return snapshot_assemble(
        version=version,
        worker_id=worker.worker_id if worker else "",
        routes=routes,
        models=models,
        default_backend=default_backend,
    )
