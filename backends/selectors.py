"""Reads. The routing snapshot is built here, off the request path."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from backends import crypto
from backends.capabilities import listed, shown
from backends.crypto import KeyDecryptionError, mask
from backends.models import (
    DEFAULT_HEALTH_INTERVAL_MS,
    AuditLog,
    Backend,
    BackendKind,
    BackendSource,
    DiscoveredModel,
    GatewaySettings,
    WorkerIdentity,
    pinned_to_serve,
)
from backends.presets import responses_api_default
from backends.snapshot import EXCLUDED_HEALTH, BackendRoute, RoutingSnapshot, SnapshotAssembler
from orgs.licenses import license_state_for, license_states_get
from orgs.models import DEFAULT_ORGANISATION
from orgs.selectors import organisation_sharing_get
from traffic import selectors as traffic_selectors
from traffic.selectors import BackendLive

logger = logging.getLogger(__name__)


def gateway_settings_get() -> GatewaySettings:
    settings_row, _ = GatewaySettings.objects.get_or_create(pk=1)
    return settings_row


def routing_version_get() -> int:
    version = GatewaySettings.objects.filter(pk=1).values_list("routing_version", flat=True).first()
    return version if version is not None else 0


def backend_list(*, instance: str | None = None) -> list[Backend]:
    """Every backend; with ``instance``, those that instance routes to."""
    backends = list(Backend.objects.select_related("organisation"))
    if instance is None:
        return backends
    return [b for b in backends if b.serves(instance)]


def instance_settings_read(*, instance: str) -> WorkerIdentity | None:
    """An instance's own settings (default backend, health interval, controller URL)."""
    return WorkerIdentity.objects.filter(instance=instance).first()


def instances_describe(*, now=None) -> list[dict]:
    """Every instance sharing this database, as ``instance_describe`` gives it."""
    now = now or timezone.now()
    return [instance_describe(identity, now=now) for identity in WorkerIdentity.objects.order_by("instance")]


def instance_describe(identity: WorkerIdentity, *, now) -> dict:
    """An instance as its last heartbeat described it: live or not, heartbeat age, uptime now,
    load and its controller client's state (plain values, nothing secret)."""
    age = max((now - identity.last_seen_at).total_seconds(), 0.0) if identity.last_seen_at else None
    live = age is not None and age < settings.ELDRIC_INSTANCE_LIVE_SECONDS
    report = identity.report if isinstance(identity.report, dict) else {}
    uptime = report.get("uptime_seconds")
    return {
        "instance": identity.instance,
        "worker_id": identity.worker_id,
        "default_backend": identity.default_backend,
        "health_interval_ms": identity.health_interval_ms,
        "created_at": identity.created_at.isoformat(),
        "last_seen_at": identity.last_seen_at.isoformat() if identity.last_seen_at else None,
        "heartbeat_age_seconds": None if age is None else round(age, 1),
        "live": live,
        # A stopped instance has no uptime; a live one has run since its report, too.
        "uptime_seconds": int(uptime + age) if live and isinstance(uptime, int | float) else None,
        "report": report,
    }


def health_intervals_get() -> dict[str, int]:
    """instance name -> its health interval (ms)."""
    return dict(WorkerIdentity.objects.values_list("instance", "health_interval_ms"))


def health_interval_for(instances: list[str], *, intervals: dict[str, int] | None = None) -> timedelta:
    """How often to probe a backend routed by ``instances`` (empty: by every instance): the
    shortest interval among them, so each instance sees its backends as often as it asked."""
    intervals = health_intervals_get() if intervals is None else intervals
    chosen = [intervals[name] for name in instances if name in intervals] if instances else list(intervals.values())
    return timedelta(milliseconds=min(chosen, default=DEFAULT_HEALTH_INTERVAL_MS))


def configuration_order(backends: list[Backend]) -> dict[str, int]:
    """name -> place in configuration order: static backends as the flags/config file list
    them, then runtime backends in creation order."""
    ranked = sorted(
        backends,
        key=lambda b: (
            b.source != BackendSource.STATIC,
            b.config_position if b.config_position is not None else 0,
            b.created_at or timezone.now(),
            b.pk or 0,
        ),
    )
    return {b.name: position for position, b in enumerate(ranked)}


def backend_count(*, organisation: str) -> int:
    return Backend.objects.filter(organisation__slug=organisation).count()


def backend_names(*, runtime_only: bool = False, instance: str | None = None) -> list[str]:
    """Every backend's name; with ``runtime_only``, those added through the API or admin;
    with ``instance``, those that instance routes to."""
    backends = Backend.objects.exclude(source=BackendSource.STATIC) if runtime_only else Backend.objects.all()
    rows = backends.values_list("name", "instances")
    return [name for name, instances in rows if instance is None or not instances or instance in instances]


def backends_enabled(*, names: list[str] | None = None, instance: str | None = None) -> list[tuple[int, str]]:
    """(id, name) of the enabled backends, optionally only those named or routed by ``instance``."""
    backends = Backend.objects.filter(enabled=True)
    if names is not None:
        backends = backends.filter(name__in=names)
    rows = backends.values_list("id", "name", "instances")
    return [(pk, name) for pk, name, instances in rows if instance is None or not instances or instance in instances]


def model_count(*, instance: str | None = None) -> int:
    """Distinct model ids across all backends, or across those ``instance`` routes to."""
    rows = DiscoveredModel.objects.all()
    if instance is not None:
        rows = rows.filter(backend__name__in=backend_names(instance=instance))
    return rows.values("model_id").distinct().count()


# What a route is built from, read as plain values for the snapshot: no model objects, and
# ``organisation__slug`` rather than a join to an organisation object per backend.
ROUTE_COLUMNS = (
    "pk",
    "name",
    "kind",
    "url",
    "api_key_encrypted",
    "api_key_hint",
    "headers",
    "priority",
    "enabled",
    "source",
    "health_status",
    "latency_ms",
    "last_error",
    "healthy_probe_count",
    "organisation__slug",
    "responses_api",
    "instances",
    "config_position",
    "created_at",
    "models_refreshed_at",
)


def backend_route(backend: Backend, *, model_count: int = 0, config_order: int = 0) -> BackendRoute:
    """The snapshot form of one backend, with its key decrypted for use upstream."""
    values = {column: getattr(backend, column) for column in ROUTE_COLUMNS if column != "organisation__slug"}
    slug = backend.organisation.slug if backend.organisation_id else DEFAULT_ORGANISATION
    return route_of(
        SimpleNamespace(**values, organisation__slug=slug), model_count=model_count, config_order=config_order
    )


def route_of(
    row, *, model_count: int = 0, config_order: int = 0, decrypted: dict[str, str] | None = None
) -> BackendRoute:
    """A route from a ``ROUTE_COLUMNS`` row; ``decrypted`` caches keys already decrypted."""
    last_error = row.last_error
    encrypted = row.api_key_encrypted
    api_key = decrypted.get(encrypted) if decrypted is not None and encrypted else None
    if api_key is None:
        try:
            api_key = crypto.decrypt(encrypted)
        except KeyDecryptionError as exc:
            api_key, last_error = "", str(exc)
            logger.error("backend %s: %s", row.name, exc)
        else:
            if decrypted is not None and encrypted:
                decrypted[encrypted] = api_key
    return BackendRoute(
        name=row.name,
        kind=row.kind,
        url=row.url.rstrip("/"),
        api_key=api_key,
        api_key_hint=row.api_key_hint,
        headers=tuple((str(k).lower(), str(v)) for k, v in (row.headers or {}).items()),
        priority=row.priority,
        enabled=row.enabled,
        source=row.source,
        health=row.health_status,
        latency_ms=row.latency_ms,
        last_error=last_error,
        healthy_probes=row.healthy_probe_count,
        model_count=model_count,
        organisation=row.organisation__slug or DEFAULT_ORGANISATION,
        config_order=config_order,
        responses_api=responses_api_of(row),
    )


def responses_api_of(backend: Backend) -> bool:
    """The backend's ``responses_api`` flag, or its preset's default when unset (null)."""
    if backend.kind != BackendKind.OPENAI_COMPATIBLE:
        return False
    if backend.responses_api is not None:
        return backend.responses_api
    return responses_api_default(backend.name, backend.url)


def routing_models_get(backends: list, cache: dict[int, tuple[object, tuple]] | None = None) -> dict[str, tuple]:
    """backend name -> its models as ``(id, created, capability)`` rows, in id order. No upstream
    ``created``: the time the gateway discovered the model (never 0).

    With ``cache`` (backend pk -> (version of its list, rows), kept by the caller between
    builds), only the lists whose version moved are read again. A list's version is its row
    count and newest ``discovered_at`` (an id added, removed or replaced) with the backend's
    ``models_refreshed_at``, which ``backend_models_sync``, the only writer of discovered
    models, sets in the same transaction as any change (a reclassified capability too).
    """
    by_pk = {backend.pk: backend for backend in backends}
    if cache is None:
        stale = list(by_pk)
    else:
        counts = (
            DiscoveredModel.objects.order_by()
            .values("backend_id")
            .annotate(count=Count("id"), newest=Max("discovered_at"))
            .values_list("backend_id", "count", "newest")
        )
        versions = {pk: (count, newest) for pk, count, newest in counts}
        for pk in [pk for pk in cache if pk not in by_pk]:
            del cache[pk]
        current = {pk: (versions.get(pk), backend.models_refreshed_at) for pk, backend in by_pk.items()}
        stale = [pk for pk, version in current.items() if pk not in cache or cache[pk][0] != version]
    read: dict[int, list[tuple]] = {pk: [] for pk in stale}
    if stale:
        rows = DiscoveredModel.objects.order_by("backend_id", "model_id")
        if len(stale) * 2 < len(by_pk):
            # Few lists moved (discovery on one backend): read just those. Otherwise read all
            # and keep what moved: one scan is cheaper than a long ``IN`` list.
            rows = rows.filter(backend_id__in=stale)
        # ``discovered_at`` only where ``created`` is missing (a second, small query): without a
        # datetime column no value needs converting, and converting one per row was half the
        # cost of reading a big catalogue.
        missing = {
            (pk, model_id): int(discovered.timestamp())
            for pk, model_id, discovered in rows.filter(Q(created__isnull=True) | Q(created=0)).values_list(
                "backend_id", "model_id", "discovered_at"
            )
            if discovered is not None
        }
        for pk, model_id, created, capability in rows.values_list("backend_id", "model_id", "created", "capability"):
            listed_by = read.get(pk)
            if listed_by is not None:
                known = created or missing.get((pk, model_id))
                listed_by.append((model_id, known, capability))
    if cache is not None:
        for pk in stale:
            cache[pk] = (current[pk], tuple(read[pk]))
        return {by_pk[pk].name: cache[pk][1] for pk in by_pk}
    return {by_pk[pk].name: tuple(rows) for pk, rows in read.items()}


def routing_snapshot_build(
    *, instance: str | None = None, assembler: SnapshotAssembler | None = None
) -> RoutingSnapshot:
    """Everything the hot path of ``instance`` (this one, ELDRIC_INSTANCE, by default)
    needs: its own static backends and the runtime backends it may use, read in a few
    queries and frozen. With ``assembler`` (the refresher's, kept between builds), only what
    changed since its last build is read and indexed again."""
    instance = instance or settings.ELDRIC_INSTANCE
    version = routing_version_get()
    worker = instance_settings_read(instance=instance)
    backends = [
        row
        for row in Backend.objects.values_list(*ROUTE_COLUMNS, named=True)
        if pinned_to_serve(row.instances, instance)
    ]
    visible = {b.name for b in backends}
    models = routing_models_get(backends, assembler.model_rows if assembler is not None else None)
    order = configuration_order(backends)
    decrypted = assembler.decrypted if assembler is not None else None
    routes = [
        route_of(b, model_count=len(models.get(b.name, ())), config_order=order[b.name], decrypted=decrypted)
        for b in backends
    ]
    if decrypted is not None:
        # Only the keys in use stay decrypted: a rotated or deleted backend's key goes.
        in_use = {b.api_key_encrypted for b in backends}
        for encrypted in [encrypted for encrypted in decrypted if encrypted not in in_use]:
            del decrypted[encrypted]
    default_backend = worker.default_backend if worker else ""
    if not default_backend:
        default_backend = routes[0].name if routes else ""
    elif default_backend not in visible:
        default_backend = ""  # gone, or a backend this instance does not route to
    # Each view is ordered by its organisation's license: priority routing or configuration order.
    states = license_states_get()
    now = timezone.now()
    organisations = organisation_sharing_get()
    priority = {slug: license_state_for(states, slug).limits(now).priority_routing for slug in organisations}
    return (assembler or SnapshotAssembler()).assemble(
        version=version,
        worker_id=worker.worker_id if worker else "",
        routes=routes,
        models=models,
        default_backend=default_backend,
        organisations=organisations,
        priority_routing=priority,
    )


# --- Management API reads --------------------------------------------------------------

# Header names whose values are credentials; shown masked, like the API key.
SENSITIVE_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "cookie")


def headers_masked(headers: dict | None) -> dict[str, str]:
    return {
        name: mask(str(value)) if any(word in str(name).lower() for word in SENSITIVE_HEADER_WORDS) else value
        for name, value in (headers or {}).items()
    }


def admin_token_digest(token: str) -> str:
    # The token is 256 random bits, so a fast hash is enough: nothing to brute-force.
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def admin_token_matches(token: str) -> bool:
    """Constant-time check of a presented admin token (ELDRIC_ADMIN_TOKEN wins over the stored hash)."""
    if not token:
        return False
    if settings.ELDRIC_ADMIN_TOKEN:
        return hmac.compare_digest(token.encode(), settings.ELDRIC_ADMIN_TOKEN.encode())
    stored = GatewaySettings.objects.filter(pk=1).values_list("admin_token_hash", flat=True).first()
    if not stored:
        return False
    return hmac.compare_digest(admin_token_digest(token).encode(), stored.encode())


def backend_queryset():
    return (
        Backend.objects.select_related("organisation")
        .annotate(model_count=Count("models"))
        .order_by("priority", "name")
    )


def live_instances_count(*, exclude_instance: str, now=None, window_seconds: float | None = None) -> int:
    """Instances (other than ``exclude_instance``) whose heartbeat is recent enough to count
    as running: what the license's cloud-worker limit counts."""
    now = now or timezone.now()
    window = settings.ELDRIC_INSTANCE_LIVE_SECONDS if window_seconds is None else window_seconds
    return (
        WorkerIdentity.objects.filter(last_seen_at__gte=now - timedelta(seconds=window))
        .exclude(instance=exclude_instance)
        .count()
    )


def backend_get(*, name: str) -> Backend | None:
    return backend_queryset().filter(name=name).first()


def backend_live(*, names: list[str] | None = None) -> dict[str, BackendLive]:
    """Circuit state, rate limit and recent traffic per backend (``traffic.selectors``)."""
    return traffic_selectors.backend_live(names=names)


def backend_routable(backend: Backend, live: BackendLive | None = None) -> bool:
    """Would a request be sent there now? Not while its circuit is open or a 429's
    Retry-After holds it back, whatever the last probe said."""
    if live is not None and live.blocked:
        return False
    return backend.enabled and backend.health_status not in EXCLUDED_HEALTH


def model_catalogue() -> list[dict]:
    """Every discovered model with the backends serving it (best priority first) and routability."""
    catalogue: dict[str, dict] = {}
    live = backend_live()
    rows = DiscoveredModel.objects.select_related("backend").order_by("model_id", "backend__priority", "backend__name")
    for row in rows:
        backend = row.backend
        # The best-priority backend's word is the model's, as in /v1/models.
        entry = catalogue.setdefault(
            row.model_id,
            {"id": row.model_id, "object": "model", "capabilities": listed(row.capability), "backends": []},
        )
        entry["backends"].append(
            {
                "name": backend.name,
                "priority": backend.priority,
                "enabled": backend.enabled,
                "health_status": backend.health_status,
                "capability": shown(row.capability),
                "routable": backend_routable(backend, live.get(backend.name)),
            }
        )
    for entry in catalogue.values():
        entry["routable"] = any(b["routable"] for b in entry["backends"])
    return list(catalogue.values())


def audit_list(*, backend: str = "", source: str = "", action: str = "", limit: int = 100):
    entries = AuditLog.objects.all()
    if backend:
        entries = entries.filter(backend_name=backend)
    if source:
        entries = entries.filter(source=source)
    if action:
        entries = entries.filter(action=action)
    return list(entries[:limit])
