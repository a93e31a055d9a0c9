"""Writes. Every write that changes routing bumps the routing version in its transaction."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from backends.audit import audit_backend_change, audit_diff, audit_record, audit_state
from backends.crypto import KeyDecryptionError
from backends.models import (
    AuditAction,
    AuditSource,
    Backend,
    BackendSource,
    DiscoveredModel,
    GatewaySettings,
    HealthStatus,
    WorkerIdentity,
)
from backends.probe import ProbeResult, probe
from backends.providers import PROVIDERS
from backends.providers.base import ModelInfo
from backends.selectors import (
    admin_token_digest,
    backend_route,
    gateway_settings_get,
    health_interval_for,
    health_intervals_get,
)
from backends.snapshot import BackendRoute
from backends.specs import BackendSpec
from backends.url_policy import UrlDenied, url_check
from orgs.change_notices import snapshot_changed_notify
from orgs.license_gates import backend_add_check, backend_remove_check, static_backends_check
from orgs.licenses import license_state_get
from orgs.models import DEFAULT_ORGANISATION, Organisation
from orgs.services import default_organisation_pk
from traffic import services as traffic_services

logger = logging.getLogger(__name__)
# ``backend_update``'s "leave this field alone" for fields where None is a value.
UNCHANGED = object()

ADMIN_TOKEN_PREFIX = "eldadm_"


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
    # Every gateway process hears of it at once when Redis is there (orgs.change_notices).
    snapshot_changed_notify("routing")


def worker_heartbeat(*, instance: str, now=None, report: dict | None = None) -> None:
    """This instance is alive (see ``backends.heartbeat``), and, with ``report``, what it
    said of itself (``WorkerIdentity.report``)."""
    changes = {"last_seen_at": now or timezone.now()}
    if report is not None:
        changes["report"] = report
    WorkerIdentity.objects.filter(instance=instance).update(**changes)


def worker_heartbeat_clear(*, instance: str, last_beat=None) -> None:
    """A clean stop: the instance no longer counts against the cloud-worker limit. With
    ``last_beat``, only if nobody beat since: a zero-downtime replacement shares the name."""
    rows = WorkerIdentity.objects.filter(instance=instance)
    if last_beat is not None:
        rows = rows.filter(last_seen_at=last_beat)
    rows.update(last_seen_at=None)


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
def instance_settings_update(
    *,
    instance: str | None = None,
    default_backend: str | None = None,
    health_interval_ms: int | None = None,
    controller_url: str | None = None,
) -> WorkerIdentity:
    """Set an instance's own settings (this instance's by default); None leaves one alone."""
    row = instance_settings_get(instance=instance or settings.ELDRIC_INSTANCE)
    for attr, value in (
        ("default_backend", default_backend),
        ("health_interval_ms", health_interval_ms),
        ("controller_url", controller_url),
    ):
        if value is not None:
            setattr(row, attr, value)
    row.save(update_fields=["default_backend", "health_interval_ms", "controller_url"])
    routing_version_bump()
    return row


def instance_settings_get(*, instance: str) -> WorkerIdentity:
    """The instance's row, created (with its ``cld-`` id) if it has none yet."""
    worker_identity_ensure(instance=instance)
    return WorkerIdentity.objects.get(instance=instance)


# The settings were installation-wide before several instances shared a database; callers
# that mean "this instance" keep working.
gateway_settings_update = instance_settings_update


def _apply_spec(backend: Backend, spec: BackendSpec) -> bool:
    changed = False
    for attr, value in (
        ("kind", spec.kind),
        ("url", spec.url),
        ("priority", spec.priority),
        ("headers", spec.headers),
        ("responses_api", spec.responses_api),
        ("source", BackendSource.STATIC),
    ):
        if getattr(backend, attr) != value:
            setattr(backend, attr, value)
            changed = True
    if backend.config_enabled != spec.enabled:
        backend.enabled = backend.config_enabled = spec.enabled
        changed = True
    if _stored_key(backend) != spec.api_key:
        backend.set_api_key(spec.api_key)
        changed = True
    return changed


def _stored_key(backend: Backend) -> str | None:
    try:
        return backend.api_key
    except KeyDecryptionError:
        # Encrypted under a key this process lacks (e.g. another instance's generated key).
        # The configuration supplies the key again, so it is simply re-encrypted.
        logger.warning("backend %s: stored key unreadable with this encryption key; replacing it", backend.name)
        return None


class StaticNameConflict(ValueError):
    """A static backend's name is already used by a backend that is not the same upstream."""


def _same_upstream(backend: Backend, spec: BackendSpec) -> bool:
    return backend.kind == spec.kind and backend.url.rstrip("/") == spec.url.rstrip("/")


def _conflict_check(backend: Backend, spec: BackendSpec, *, instance: str) -> None:
    """Names are unique across the installation. Another instance may declare the same name
    only for the same upstream (type and URL); a runtime backend's name is never taken over,
    since that would move it out of the other instances' routing."""
    if backend.source != BackendSource.STATIC:
        raise StaticNameConflict(
            f"backend {spec.name!r}: the name is taken by a backend added at runtime (API or admin); "
            "rename it in the configuration, or delete the runtime backend first"
        )
    others = [name for name in backend.instances if name != instance]
    if others and not _same_upstream(backend, spec):
        raise StaticNameConflict(
            f"backend {spec.name!r}: instance {', '.join(sorted(others))} already declares it as "
            f"{backend.kind} {backend.url}, this instance ({instance}) as {spec.kind} {spec.url}; "
            "the same name must mean the same type and url on every instance: rename one of them"
        )


STATIC_APPLY_ATTEMPTS = 3


def backends_static_apply(*, specs: list[BackendSpec], instance: str | None = None) -> StaticDiff:
    """Make this instance's static backends match ``specs``: add, update, and drop those it
    no longer lists. Other instances' static backends stay as they are; a backend that
    several instances declare (same name, type and URL) is shared, and removed only when the
    last of them drops it. Raises StaticNameConflict, changing nothing, on a name clash."""
    instance = instance or settings.ELDRIC_INSTANCE
    for attempt in range(STATIC_APPLY_ATTEMPTS):
        try:
            return _static_apply(specs=specs, instance=instance)
        except (IntegrityError, OperationalError):
            # Instances starting together may both add a shared backend (the loser's insert
            # hits the unique name) or lock the same rows; the retry sees the winner's rows.
            if attempt == STATIC_APPLY_ATTEMPTS - 1:
                raise
            logger.info("static backends of instance %s: concurrent change, applying again", instance)
    raise AssertionError("unreachable")


@transaction.atomic
def _static_apply(*, specs: list[BackendSpec], instance: str) -> StaticDiff:
    added, changed = [], []
    reordered = False
    wanted = {spec.name for spec in specs}
    # The installation's (default organisation's) license caps the static backends.
    static_backends_check(license_state_get(DEFAULT_ORGANISATION), count=len(specs))
    default_pk = default_organisation_pk()
    # Every row this may touch, locked in one statement in primary-key order: two instances
    # applying at once can neither both take a name nor drop each other as co-owners.
    locked = list(
        Backend.objects.select_for_update().filter(Q(name__in=wanted) | Q(source=BackendSource.STATIC)).order_by("pk")
    )
    existing = {b.name: b for b in locked if b.name in wanted}
    for spec in specs:
        if spec.name in existing:
            _conflict_check(existing[spec.name], spec, instance=instance)
    for position, spec in enumerate(specs):
        backend = existing.get(spec.name)
        before = audit_state(backend)
        if backend is None:
            backend = Backend(
                name=spec.name, organisation_id=default_pk, config_position=position, instances=[instance]
            )
            _apply_spec(backend, spec)
            backend.save()
            added.append(spec.name)
            audit_backend_change(before=before, backend=backend, name=spec.name, actor="config", source="config")
            continue
        joined = instance not in backend.instances
        if joined:
            backend.instances = sorted({*backend.instances, instance})
        if _apply_spec(backend, spec) or backend.organisation_id != default_pk or joined:
            if backend.url != before.get("url") or backend.kind != before.get("type"):
                backend.health_status = HealthStatus.UNKNOWN
            backend.organisation_id, backend.config_position = default_pk, position
            backend.save()
            changed.append(spec.name)
            audit_backend_change(before=before, backend=backend, name=spec.name, actor="config", source="config")
        elif backend.config_position != position:
            # Only its place in the file moved: not a change of the backend, but of Free's
            # routing order.
            Backend.objects.filter(pk=backend.pk).update(config_position=position)
            reordered = True
    removed = []
    # Few rows: filtered here, since SQLite has no JSON containment lookup.
    for backend in locked:
        if backend.source != BackendSource.STATIC or backend.name in wanted or instance not in backend.instances:
            continue
        removed.append(backend.name)
        before = audit_state(backend)
        backend.instances = [name for name in backend.instances if name != instance]
        if backend.instances:
            # Still declared by another instance: this one only stops routing to it.
            Backend.objects.filter(pk=backend.pk).update(instances=backend.instances)
            audit_backend_change(before=before, backend=backend, name=backend.name, actor="config", source="config")
            continue
        audit_backend_change(before=before, backend=None, name=backend.name, actor="config", source="config")
        backend.delete()
    diff = StaticDiff(added, changed, sorted(removed))
    if diff or reordered:
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
    # A provider that gives no ``created`` (Cohere, some OpenAI-compatible servers): the time
    # the gateway first discovered the model, so GET /v1/models never says 0.
    discovered = int(timezone.now().timestamp())
    DiscoveredModel.objects.bulk_create(
        [
            DiscoveredModel(
                backend=backend,
                model_id=i,
                created=latest[i].created or discovered,
                capability=latest[i].capability,
            )
            for i in added
        ]
    )
    # A provider may change its mind about what a model is for (or a newer gateway reads it
    # better): the routing check follows what discovery last said.
    reclassified = False
    for model_id, capability in backend.models.exclude(model_id__in=added).values_list("model_id", "capability"):
        info = latest.get(model_id)
        if info is not None and info.capability != capability:
            backend.models.filter(model_id=model_id).update(capability=info.capability)
            reclassified = True
    Backend.objects.filter(pk=backend.pk).update(models_refreshed_at=timezone.now())
    if added or removed or reclassified:
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
    Backend.objects.filter(pk=backend.pk).update(
        **fields, **({"healthy_probe_count": F("healthy_probe_count") + 1} if healthy else {})
    )
    for name, value in fields.items():
        setattr(backend, name, value)
    if healthy:
        backend.refresh_from_db(fields=["healthy_probe_count"])
    else:
        _probe_again_soon(backend, failures=fields["consecutive_failures"], now=now)
    _log_transition(backend, previous, result)
    traffic_services.probe_record(backend=backend.name, status=result.status, latency_ms=result.latency_ms)
    # Latency alone does not change routing; publish only when the picture changes, plus on
    # every success so a half-open circuit in the gateway sees a fresh probe.
    if previous != result.status or healthy:
        routing_version_bump()
    return backend


def probe_backoff(*, failures: int, interval: timedelta) -> timedelta:
    """How soon to probe a failing backend again: 1 s, 2 s, 4 s, … capped at the interval."""
    if failures <= 0:
        return interval
    return min(interval, timedelta(seconds=2 ** min(failures - 1, 30)))


def _probe_again_soon(backend: Backend, *, failures: int, now) -> None:
    # A backend that comes back should route again within seconds, not a whole interval.
    # Only ever moves the next probe earlier, so it cannot undo another worker's claim
    # (backends_claim_due's compare-and-swap on next_check_at).
    interval = health_interval_for(backend.instances)
    retry_at = now + probe_backoff(failures=failures, interval=interval)
    Backend.objects.filter(pk=backend.pk).filter(Q(next_check_at__isnull=True) | Q(next_check_at__gt=retry_at)).update(
        next_check_at=retry_at
    )


def backend_check_health(*, backend_id: int) -> ProbeResult | None:
    backend = Backend.objects.filter(pk=backend_id).first()
    if backend is None:
        return None
    result = probe(backend_route(backend), timeout=settings.ELDRIC_HEALTH_TIMEOUT)
    backend_health_record(backend=backend, result=result)
    return result


def backend_discover(*, backend_id: int) -> ProbeResult | None:
    """Refresh the backend's model list; a successful listing also counts as a health probe.

    Never raises for anything the upstream sent: ``probe`` turns every failure into an
    unhealthy result, and a listing the database refuses is reported the same way.
    """
    backend = Backend.objects.filter(pk=backend_id).first()
    if backend is None:
        return None
    result = probe(backend_route(backend), timeout=settings.ELDRIC_HEALTH_TIMEOUT)
    if result.status == HealthStatus.HEALTHY:
        try:
            added, removed = backend_models_sync(backend=backend, models=result.models)
        except DatabaseError:
            logger.exception("backend %s: could not store its model list", backend.name)
            result = ProbeResult(
                HealthStatus.UNHEALTHY,
                result.latency_ms,
                result.http_status,
                "the model list could not be stored; see the server log",
            )
        else:
            if added or removed:
                logger.info(
                    "backend %s: %d models (+%d, -%d)", backend.name, len(result.models), len(added), len(removed)
                )
    backend_health_record(backend=backend, result=result)
    return result


def backends_claim_due(*, now=None) -> list[int]:
    """Claim the enabled backends whose probe is due, safely across several workers.

    Each claim is a compare-and-swap on ``next_check_at``: a worker that loses the race
    updates no row and skips the backend.
    """
    now = now or timezone.now()
    intervals = health_intervals_get()
    claimed = []
    due = Backend.objects.filter(enabled=True).filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
    for backend_id, next_check_at, instances in due.values_list("id", "next_check_at", "instances"):
        interval = health_interval_for(instances, intervals=intervals)
        won = Backend.objects.filter(pk=backend_id, next_check_at=next_check_at).update(next_check_at=now + interval)
        if won:
            claimed.append(backend_id)
    return claimed


# Discovery ticks of several beats (one per instance's embedded worker) drift apart by seconds;
# a claim this close to being due counts as due, so no interval is skipped by a few ms.
DISCOVERY_SLACK = 0.05


def backends_claim_discovery(*, interval: float, now=None) -> list[int]:
    """Claim the enabled backends whose discovery is due, once per ``interval`` across every
    worker: a compare-and-swap on ``next_discovery_at``, like ``backends_claim_due``."""
    now = now or timezone.now()
    step = timedelta(seconds=interval)
    horizon = now + step * DISCOVERY_SLACK
    claimed = []
    due = Backend.objects.filter(enabled=True).filter(
        Q(next_discovery_at__isnull=True) | Q(next_discovery_at__lte=horizon)
    )
    for backend_id, next_at in due.values_list("id", "next_discovery_at"):
        if Backend.objects.filter(pk=backend_id, next_discovery_at=next_at).update(next_discovery_at=now + step):
            claimed.append(backend_id)
    return claimed


@transaction.atomic
def backend_save(
    *, backend: Backend, api_key: str | None = None, actor: str = "system", source: str = AuditSource.SYSTEM
) -> Backend:
    """Persist edits made to ``backend`` (admin form); a non-empty ``api_key`` replaces the key."""
    previous = Backend.objects.filter(pk=backend.pk).first() if backend.pk else None
    if previous is None or previous.organisation_id != backend.organisation_id:
        _backend_add_check(organisation_id=backend.organisation_id)
    before = audit_state(previous)
    if api_key:
        backend.set_api_key(api_key)
    backend.save()
    changes = audit_backend_change(before=before, backend=backend, name=backend.name, actor=actor, source=source)
    routing_version_bump()
    if backend.enabled and (not before or changes.keys() & (CONNECTION_FIELDS | {"enabled"})):
        _discover_soon(backend.pk)
    return backend


@transaction.atomic
def backend_delete(*, backend: Backend, actor: str = "system", source: str = AuditSource.SYSTEM) -> None:
    """Remove a backend; raises LicenseLimit where the owner's license has no runtime removal."""
    if backend.source != BackendSource.STATIC:
        backend_remove_check(license_state_get(backend.organisation.slug))
    audit_backend_change(before=audit_state(backend), backend=None, name=backend.name, actor=actor, source=source)
    backend.delete()
    routing_version_bump()


# --- Management API, admin and audit ----------------------------------------------------------

# Changing any of these makes the last probe meaningless.
CONNECTION_FIELDS = frozenset({"type", "url", "api_key", "headers"})


class BackendNameTaken(ValueError):
    """Another backend already has this name."""


class UnknownOrganisation(ValueError):
    """No organisation has this slug."""


def _backend_add_check(*, organisation_id: int) -> None:
    """Call inside the write's transaction: the organisation's row lock serialises concurrent
    adds, so two of them cannot both take the last place under the limit."""
    owner = Organisation.objects.select_for_update().get(pk=organisation_id)
    existing = Backend.objects.filter(organisation_id=organisation_id).count()
    backend_add_check(license_state_get(owner.slug), existing=existing)


def _has_adapter(kind: str) -> bool:
    return kind in PROVIDERS


def _no_adapter(kind: str) -> ProbeResult:
    return ProbeResult(HealthStatus.UNHEALTHY, error=f"type {kind!r} has no provider adapter in this build")


def backend_test(*, backend: Backend) -> ProbeResult:
    """A live check on demand. Records the health it finds and, when healthy, the model list.

    Raises UrlDenied (after recording it as the backend's health) when the URL policy
    denies the stored URL, e.g. after the operator extended ELDRIC_BACKEND_URL_DENY.
    """
    if not _has_adapter(backend.kind):
        result = _no_adapter(backend.kind)
        backend_health_record(backend=backend, result=result)
        return result
    try:
        url_check(backend.url)
    except UrlDenied as exc:
        backend_health_record(backend=backend, result=ProbeResult(HealthStatus.UNHEALTHY, error=f"url: {exc}"))
        raise
    result = backend_discover(backend_id=backend.pk)
    return result or ProbeResult(HealthStatus.UNKNOWN, error="backend was deleted")


def backend_config_test(*, kind: str, url: str, api_key: str = "", headers: dict | None = None) -> ProbeResult:
    """A live check of a configuration that is not saved; writes nothing. Raises UrlDenied."""
    if not _has_adapter(kind):
        return _no_adapter(kind)
    url_check(url)
    route = BackendRoute(
        name="unsaved",
        kind=kind,
        url=url.rstrip("/"),
        api_key=api_key,
        headers=tuple((str(k).lower(), str(v)) for k, v in (headers or {}).items()),
    )
    return probe(route, timeout=settings.ELDRIC_HEALTH_TIMEOUT)


def _discover_soon(backend_id: int) -> None:
    """After the commit, probe and list models so the backend routes within a poll interval.

    Runs outside any transaction, so a slow upstream holds no database lock. A failure here
    must not turn a saved write into an error: the periodic check will try again.
    """

    def run() -> None:
        backend = Backend.objects.filter(pk=backend_id).first()
        if backend is None:
            return
        try:
            backend_test(backend=backend)
        except UrlDenied as exc:
            logger.warning("backend %s: not probed: %s", backend.name, exc)
        except Exception:
            logger.exception("backend %s: discovery after save failed", backend.name)

    transaction.on_commit(run)


def backend_create(
    *,
    name: str,
    kind: str,
    url: str,
    api_key: str = "",
    priority: int = 100,
    enabled: bool = True,
    headers: dict[str, str] | None = None,
    actor: str,
    source: str = AuditSource.API,
    organisation: str = DEFAULT_ORGANISATION,
    instances: list[str] | None = None,
    responses_api: bool | None = None,
) -> Backend:
    """Add a runtime backend to ``organisation`` (a slug), routed by every instance or, with
    ``instances``, only by the instances named; its models are discovered right after the
    commit. Raises LicenseLimit when the organisation's license does not allow it,
    UnknownOrganisation when there is no such organisation."""
    try:
        with transaction.atomic():
            slug = organisation or DEFAULT_ORGANISATION
            owner = (
                Organisation.objects.filter(pk=default_organisation_pk()).first()
                if slug == DEFAULT_ORGANISATION
                else Organisation.objects.filter(slug=slug).first()
            )
            if owner is None:
                raise UnknownOrganisation(f"no organisation {organisation!r}")
            _backend_add_check(organisation_id=owner.pk)
            backend = Backend(
                organisation=owner,
                name=name,
                kind=kind,
                url=url,
                priority=priority,
                enabled=enabled,
                headers=headers or {},
                source=BackendSource.API,
                instances=sorted(set(instances or [])),
                responses_api=responses_api,
            )
            backend.set_api_key(api_key)
            backend.save()
            audit_backend_change(before={}, backend=backend, name=name, actor=actor, source=source)
            routing_version_bump()
            if enabled:
                _discover_soon(backend.pk)
    except IntegrityError:
        raise BackendNameTaken(f"a backend named {name!r} already exists") from None
    return backend


def backend_update(
    *,
    backend: Backend,
    actor: str,
    source: str = AuditSource.API,
    kind: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    priority: int | None = None,
    enabled: bool | None = None,
    headers: dict[str, str] | None = None,
    instances: list[str] | None = None,
    responses_api=UNCHANGED,
) -> Backend:
    """Change some fields; None leaves a field alone, an empty ``api_key`` removes the key,
    an empty ``instances`` unpins a runtime backend (every instance routes to it).
    ``responses_api`` is left alone when ``UNCHANGED``: None is one of its values there
    ("the preset decides")."""
    with transaction.atomic():
        before = audit_state(backend)
        for attr, value in (("kind", kind), ("url", url), ("priority", priority), ("enabled", enabled)):
            if value is not None:
                setattr(backend, attr, value)
        if headers is not None:
            backend.headers = headers
        if instances is not None:
            backend.instances = sorted(set(instances))
        if responses_api is not UNCHANGED:
            backend.responses_api = responses_api
        if api_key is not None:
            backend.set_api_key(api_key)
        changes = audit_diff(before, audit_state(backend))
        if not changes:
            return backend
        if changes.keys() & CONNECTION_FIELDS:
            backend.health_status = HealthStatus.UNKNOWN
            backend.last_error = ""
            backend.consecutive_failures = 0
        backend.save()
        audit_backend_change(before=before, backend=backend, name=backend.name, actor=actor, source=source)
        routing_version_bump()
        if backend.enabled and (changes.keys() & CONNECTION_FIELDS or "enabled" in changes):
            _discover_soon(backend.pk)
    return backend


def backend_set_enabled(*, backend: Backend, enabled: bool, actor: str, source: str) -> Backend:
    return backend_update(backend=backend, enabled=enabled, actor=actor, source=source)


def admin_token_ensure() -> str | None:
    """On first start without ELDRIC_ADMIN_TOKEN: make a token and keep only its hash.

    Returns the new token, to be shown once; None when a token already exists or the
    environment provides one. Safe when several instances start together on one database.
    """
    if settings.ELDRIC_ADMIN_TOKEN:
        return None
    gateway_settings_get()
    token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    won = GatewaySettings.objects.filter(pk=1, admin_token_hash="").update(admin_token_hash=admin_token_digest(token))
    return token if won else None


@transaction.atomic
def admin_token_rotate(*, actor: str) -> str:
    """Replace the stored admin token; the old one stops working at once."""
    token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    gateway_settings_get()
    GatewaySettings.objects.filter(pk=1).update(admin_token_hash=admin_token_digest(token))
    audit_record(actor=actor, source=AuditSource.SYSTEM, action=AuditAction.ROTATE_ADMIN_TOKEN)
    return token
