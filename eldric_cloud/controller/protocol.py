"""The controller protocol, version 1, as plain data: paths, headers, payloads, the model hash.

Nothing here does IO; ``client`` sends what ``heartbeat_payload`` builds, ``stub`` checks
what arrives with ``payload_problem``. See ``docs/controller-protocol.md``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
DEFAULT_WORKERS_PATH = "/api/v1/workers"
SECRET_HEADER = "X-Eldric-Cluster-Secret"
WORKER_TYPE = "cloud"
WORKER_ID = re.compile(r"^[a-z]{3}-[0-9a-z]{4,32}$")
# Error codes a controller answers with (the OpenAI error shape, see the protocol document).
WORKER_NOT_FOUND = "worker_not_found"  # 404: register again, with the full model list
MODELS_UNKNOWN = "models_unknown"  # 409: the hash was sent without the list it names; send the list
# Longest model list one heartbeat carries; the hash always covers the whole list.
MAX_MODELS = 10_000


@dataclass(frozen=True, slots=True)
class MinuteFigures:
    """Finished requests over the last minute (the traffic accounting's definitions)."""

    requests: int = 0
    errors: int = 0
    p50_latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """One backend as the controller sees it: never its URL or key."""

    name: str
    kind: str
    state: str  # routing.backend_state's word: healthy, unhealthy, circuit_open, disabled, ...
    models: int = 0
    latency_ms: float | None = None
    priority: int = 100


@dataclass(frozen=True, slots=True)
class SystemFigures:
    cpu_percent: float | None = None  # the host's, all cores, 0..100
    memory_percent: float | None = None  # the host's memory in use, 0..100
    process_cpu_percent: float | None = None  # this process, percent of one core
    process_rss_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """Everything one heartbeat reports, gathered from the gateway at send time."""

    worker_id: str
    version: str
    instance: str
    url: str
    host: str
    port: int
    uptime_seconds: int
    status: str
    active_connections: int
    requests_in_flight: int
    last_minute: MinuteFigures
    system: SystemFigures
    backends: Sequence[BackendStatus]
    models: Sequence[str]
    license_tier: str
    extra: dict = field(default_factory=dict)


def models_hash(models: Iterable[str]) -> str:
    """A stable digest of the model list: order and duplicates do not matter."""
    digest = hashlib.sha256("\n".join(sorted(set(models))).encode()).hexdigest()
    return f"sha256:{digest}"


def worker_path(workers_path: str, worker_id: str) -> str:
    return f"{workers_path.rstrip('/')}/{worker_id}"


def secret_headers(secret: str) -> dict[str, str]:
    return {SECRET_HEADER: secret} if secret else {}


def heartbeat_payload(snapshot: WorkerSnapshot, *, include_models: bool, sent_at: str) -> dict:
    """The body of ``PUT {workers_path}/{worker_id}``: registration and heartbeat alike.

    ``include_models=False`` leaves the list out and sends only its hash, for a controller
    that acknowledged that hash already.
    """
    models = sorted(set(snapshot.models))
    # As /health counts them: a backend not probed yet ("unknown") is routed to, so it counts.
    healthy = sum(1 for b in snapshot.backends if b.state in ("healthy", "unknown"))
    enabled = sum(1 for b in snapshot.backends if b.state != "disabled")
    payload = {
        "protocol_version": PROTOCOL_VERSION,
        "worker_id": snapshot.worker_id,
        "worker_type": WORKER_TYPE,
        "version": snapshot.version,
        "instance": snapshot.instance,
        "url": snapshot.url,
        "host": snapshot.host,
        "port": snapshot.port,
        "uptime_seconds": snapshot.uptime_seconds,
        "status": snapshot.status,
        "sent_at": sent_at,
        "load": {
            "active_connections": snapshot.active_connections,
            "requests_in_flight": snapshot.requests_in_flight,
            "last_minute": {
                "requests": snapshot.last_minute.requests,
                "errors": snapshot.last_minute.errors,
                "p50_latency_ms": snapshot.last_minute.p50_latency_ms,
            },
            "cpu_percent": snapshot.system.cpu_percent,
            "memory_percent": snapshot.system.memory_percent,
            "process_cpu_percent": snapshot.system.process_cpu_percent,
            "process_rss_bytes": snapshot.system.process_rss_bytes,
            # A cloud gateway has no GPU; the field is there for the load_based strategy.
            "gpu_percent": None,
        },
        "backends_summary": {"total": enabled, "healthy": healthy, "unhealthy": enabled - healthy},
        "backends": [
            {
                "name": b.name,
                "kind": b.kind,
                "state": b.state,
                "models": b.models,
                "latency_ms": b.latency_ms,
                "priority": b.priority,
            }
            for b in snapshot.backends
        ],
        "models_count": len(models),
        "models_hash": models_hash(models),
        "license": {"tier": snapshot.license_tier},
    }
    if include_models:
        payload["models"] = models[:MAX_MODELS]
        if len(models) > MAX_MODELS:
            payload["models_truncated"] = True
    payload.update(snapshot.extra)
    return payload


def payload_problem(payload: object, *, path_worker_id: str) -> tuple[str, str] | None:
    """What is wrong with a registration body, as (param, message); None when it is fine.
    Checks what a controller relies on, and lets unknown fields through (forward compatible)."""
    if not isinstance(payload, dict):
        return "", "The body must be a JSON object."
    if payload.get("protocol_version") != PROTOCOL_VERSION:
        return "protocol_version", f"Only protocol_version {PROTOCOL_VERSION} is understood."
    worker_id = payload.get("worker_id")
    if not isinstance(worker_id, str) or not WORKER_ID.match(worker_id):
        return "worker_id", "worker_id must look like cld-a1b2c3d4."
    if worker_id != path_worker_id:
        return "worker_id", "worker_id must match the id in the path."
    if not isinstance(payload.get("worker_type"), str) or not payload["worker_type"]:
        return "worker_type", "worker_type is required."
    port = payload.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return "port", "port must be a TCP port."
    if not isinstance(payload.get("url"), str):
        return "url", "url is required."
    digest = payload.get("models_hash")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        return "models_hash", "models_hash must be sha256:<hex>."
    models = payload.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        return "models", "models must be a list of strings."
    for name in ("load", "license"):
        if name in payload and not isinstance(payload[name], dict):
            return name, f"{name} must be an object."
    if "backends" in payload and not isinstance(payload["backends"], list):
        return "backends", "backends must be a list."
    return None


def error_body(message: str, *, code: str, type_: str = "invalid_request_error", param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True, slots=True)
class WorkerAddress:
    url: str
    host: str
    port: int


def advertised_address(*, bind_host: str, port: int, advertise_url: str = "", hostname: str = "") -> WorkerAddress:
    """Where the controller and router should reach this instance.

    ``ELDRIC_ADVERTISE_URL`` wins; otherwise the listen address, except that a wildcard
    (``0.0.0.0``, ``::``) is nobody's address, so the machine's host name stands in.
    """
    if advertise_url:
        from urllib.parse import urlsplit

        parts = urlsplit(advertise_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"ELDRIC_ADVERTISE_URL: {advertise_url!r} is not an http(s) URL")
        advertised_port = parts.port or (443 if parts.scheme == "https" else 80)
        return WorkerAddress(url=advertise_url.rstrip("/"), host=parts.hostname, port=advertised_port)
    host = bind_host
    if host in WILDCARD_HOSTS:
        import socket

        host = hostname or socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return WorkerAddress(url=f"http://{shown}:{port}", host=host, port=port)
