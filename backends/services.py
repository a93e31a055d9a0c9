"""Writes. Every write that changes routing bumps the routing version in its transaction."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from backends.models import Backend, BackendSource, DiscoveredModel, GatewaySettings, HealthStatus, WorkerIdentity
from backends.probe import ProbeResult, probe
from backends.providers.base import ModelInfo
from backends.selectors import backend_route, gateway_settings_get

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendSpec:
    """A backend as written in ``--backends`` or the config file."""

    name: str
    url: str
    kind: str = "openai_compatible"
    api_key: str = field(default="", repr=False)
    priority: int = 100
    enabled: bool = True
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StaticDiff:
    added: list[str]
    changed: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def routing_version_bump() -> None:
    GatewaySettings.objects.get_or_create(pk=1)
    GatewaySettings.objects.filter(pk=1).update(routing_version=F("routing_version") + 1)


def worker_identity_ensure(*, instance: str) -> str:
    """The instance's ``cld-xxxxxxxx`` id, generated once and kept in the database."""
    existing = WorkerIdentity.objects.filter(instance=instance).first()
    if existing:
        return existing.worker_id
    for _ in range(5):
        try:
            with transaction.atomic():
                return WorkerIdentity.objects.create(
                    instance=instance, worker_id=f"cld-{secrets.token_hex(4)}"
                ).worker_id
        except IntegrityError:
            # Another process won the race for this instance, or the id collided.
            existing = WorkerIdentity.objects.filter(instance=instance).first()
            if existing:
                return existing.worker_id
    raise RuntimeError("could not allocate a unique worker id")


@transaction.atomic
def gateway_settings_update(
    *, default_backend: str | None = None, health_interval_ms: int | None = None, controller_url: str | None = None
) -> GatewaySettings:
    row = gateway_settings_get()
    if default_backend is not None:
        row.default_backend = default_backend
    if health_interval_ms is not None:
        row.health_interval_ms = health_interval_ms
    if controller_url is not None:
        row.controller_url = controller_url
    row.save()
    routing_version_bump()
    return row


def _apply_spec(backend: Backend, spec: BackendSpec) -> bool:
    changed = False
    for attr, value in (
        ("kind", spec.kind),
        ("url", spec.url),
        ("priority", spec.priority),
        ("enabled", spec.enabled),
        ("headers", spec.headers),
        ("source", BackendSource.STATIC),
    ):
        if getattr(backend, attr) != value:
            setattr(backend, attr, value)
            changed = True
    if (not backend.api_key_encrypted and spec.api_key) or (
        backend.api_key_encrypted and backend.api_key != spec.api_key
    ):
        backend.set_api_key(spec.api_key)
        changed = True
    return changed


@transaction.atomic
def backends_static_apply(*, specs: list[BackendSpec]) -> StaticDiff:
    """Make the static backends match ``specs``: add, update, and drop those no longer listed."""
    added, changed = [], []
    wanted = {spec.name for spec in specs}
    for spec in specs:
        backend = Backend.objects.filter(name=spec.name).first()
        if backend is None:
            backend = Backend(name=spec.name)
            _apply_spec(backend, spec)
            backend.save()
            added.append(spec.name)
        elif _apply_spec(backend, spec):
            if backend.url != spec.url or backend.kind != spec.kind:
                backend.health_status = HealthStatus.UNKNOWN
            backend.save()
            changed.append(spec.name)
    stale = Backend.objects.filter(source=BackendSource.STATIC).exclude(name__in=wanted)
    removed = sorted(stale.values_list("name", flat=True))
    stale.delete()
    diff = StaticDiff(added, changed, removed)
    if diff:
        routing_version_bump()
    return diff


@transaction.atomic
def backend_models_sync(*, backend: Backend, models: list[ModelInfo]) -> tuple[list[str], list[str]]:
    """Replace the backend's discovered models; return (added, removed) ids."""
    latest = {m.id: m for m in models}
    current = set(backend.models.values_list("model_id", flat=True))
    removed = sorted(current - latest.keys())
    added = sorted(latest.keys() - current)
    if removed:
        backend.models.filter(model_id__in=removed).delete()
    DiscoveredModel.objects.bulk_create(
        [
            DiscoveredModel(backend=backend, model_id=i, created=latest[i].created, capability=latest[i].capability)
            for i in added
        ]
    )
    Backend.objects.filter(pk=backend.pk).update(models_refreshed_at=timezone.now())
    if added or removed:
        routing_version_bump()
    return added, removed


def _log_transition(backend: Backend, previous: str, result: ProbeResult) -> None:
    if previous == result.status:
        return
    if result.status == HealthStatus.AUTH_FAILED:
        logger.warning("backend %s: API key rejected (%s)", backend.name, result.error)
    elif result.status == HealthStatus.UNHEALTHY:
        logger.warning("backend %s is unhealthy: %s", backend.name, result.error)
    elif previous != HealthStatus.UNKNOWN:
        logger.info("backend %s recovered (%s ms)", backend.name, result.latency_ms)


@transaction.atomic
def backend_health_record(*, backend: Backend, result: ProbeResult) -> Backend:
    previous = backend.health_status
    healthy = result.status == HealthStatus.HEALTHY
    now = timezone.now()
    fields = {
        "health_status": result.status,
        "latency_ms": result.latency_ms,
        "last_checked_at": now,
        "last_error": "" if healthy else result.error,
        "consecutive_failures": 0 if healthy else backend.consecutive_failures + 1,
    }
    Backend.objects.filter(pk=backend.pk).update(**fields)
    for name, value in fields.items():
        setattr(backend, name, value)
    _log_transition(backend, previous, result)
    # Latency alone does not change routing; publish only when the picture changes, plus on
    # every success so a half-open circuit in the gateway sees a fresh probe.
    if previous != result.status or healthy:
        routing_version_bump()
    return backend


def backend_check_health(*, backend_id: int) -> ProbeResult | None:
    backend = Backend.objects.filter(pk=backend_id).first()
    if backend is None:
        return None
    result = probe(backend_route(backend), timeout=settings.ELDRIC_HEALTH_TIMEOUT)
    backend_health_record(backend=backend, result=result)
    return result


def backend_discover(*, backend_id: int) -> ProbeResult | None:
    """Refresh the backend's model list; a successful listing also counts as a health probe."""
    backend = Backend.objects.filter(pk=backend_id).first()
    if backend is None:
        return None
    result = probe(backend_route(backend), timeout=settings.ELDRIC_HEALTH_TIMEOUT)
    backend_health_record(backend=backend, result=result)
    if result.status == HealthStatus.HEALTHY:
        added, removed = backend_models_sync(backend=backend, models=result.models)
        if added or removed:
            logger.info("backend %s: %d models (+%d, -%d)", backend.name, len(result.models), len(added), len(removed))
    return result


def backends_claim_due(*, now=None) -> list[int]:
    """Claim the enabled backends whose probe is due, safely across several workers.

    Each claim is a compare-and-swap on ``next_check_at``: a worker that loses the race
    updates no row and skips the backend.
    """
    now = now or timezone.now()
    interval = timedelta(milliseconds=gateway_settings_get().health_interval_ms)
    claimed = []
    due = Backend.objects.filter(enabled=True).filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
    for backend_id, next_check_at in due.values_list("id", "next_check_at"):
        won = Backend.objects.filter(pk=backend_id, next_check_at=next_check_at).update(next_check_at=now + interval)
        if won:
            claimed.append(backend_id)
    return claimed


@transaction.atomic
def backend_save(*, backend: Backend, api_key: str | None = None) -> Backend:
    """Persist edits made to ``backend`` (admin form); a non-empty ``api_key`` replaces the key."""
    if api_key:
        backend.set_api_key(api_key)
    backend.save()
    routing_version_bump()
    return backend


@transaction.atomic
def backend_delete(*, backend: Backend) -> None:
    backend.delete()
    routing_version_bump()
