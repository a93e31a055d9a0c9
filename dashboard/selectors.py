"""Reads for the dashboard: one JSON-ready picture of the installation, built from the
database the gateways, the probes (Celery) and the roll-up flushes write to. Never the
request path: the page and its websocket read roll-ups and rows, not the gateway's memory
(the routing decisions, which are in memory by nature, are added by the publisher).

Nothing secret leaves here: upstream keys appear only as their stored hint (``sk-…2222``).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from backends.models import Backend, DiscoveredModel
from backends.selectors import backend_routable, instances_describe
from backends.status import STATUSES, backend_status
from dashboard.traffic_selectors import (
    backend_minutes,
    backend_windows,
    hour_rows,
    hour_series,
    probe_history,
    traffic_breakdown,
    usage_tables,
)
from traffic.selectors import BackendLive, backend_circuits

RATE_MINUTES = 5  # the backends' per-minute rates: averaged over the last 5 minutes


def dashboard_state(now: datetime | None = None, *, usage: dict | None = None) -> dict:
    """``usage``: the tokens-and-cost tables when the caller has fresh ones (they change slowly
    and cost the most to read); read here when None."""
    now = now or timezone.now()
    backends = list(Backend.objects.select_related("organisation").annotate(model_count=Count("models")))
    rows = hour_rows(now=now)
    live = _live(backends, rows, now)
    statuses = {b.name: backend_status(b, live.get(b.name)) for b in backends}
    minutes = backend_minutes(rows, now=now)
    probes = probe_history(now=now)
    return {
        "generated_at": now.isoformat(),
        "statuses": {key: {"label": label, "colour": colour} for key, (label, colour) in STATUSES.items()},
        "backends": [
            {
                **_backend_row(b, live.get(b.name) or BackendLive(), statuses[b.name]),
                "minutes": minutes.get(b.name),
                "probes": probes.get(b.name),
            }
            for b in backends
        ],
        "models": _models(statuses, {b.name: backend_routable(b, live.get(b.name)) for b in backends}),
        "traffic": hour_series(rows, now=now),
        "breakdown": traffic_breakdown(rows),
        "usage": usage if usage is not None else usage_tables(today=now.date()),
        "instances": instances_describe(now=now),
        # The routing decisions live in the process's memory, not here: the publisher adds them.
        "decisions": None,
    }


def _live(backends: list[Backend], rows: list[dict], now: datetime) -> dict[str, BackendLive]:
    """What ``backends.selectors.backend_live`` answers (circuit, rate limit, the last 5
    minutes), with the traffic part taken from the hour's rows already read."""
    circuits = backend_circuits(names=[b.name for b in backends], now=now)
    windows = backend_windows(rows, now=now, minutes=RATE_MINUTES)
    live = {}
    for backend in backends:
        circuit, until = circuits.get(backend.name, (BackendLive.circuit, None))
        window = windows.get(backend.name)
        live[backend.name] = BackendLive(
            circuit=circuit, rate_limited_until=until, windows={RATE_MINUTES: window} if window else {}
        )
    return live


def _backend_row(backend: Backend, live: BackendLive, status) -> dict:
    recent = live.window(RATE_MINUTES)
    return {
        "name": backend.name,
        "organisation": backend.organisation.slug,
        "kind": backend.kind,
        "url": backend.url,
        "source": backend.source,
        # Static: the instances whose flags or config file declare it (why it is read-only here).
        "instances": list(backend.instances or []),
        "enabled": backend.enabled,
        "priority": backend.priority,
        "status": status.key,
        "status_label": status.label,
        "status_reason": status.reason,
        "colour": status.colour,
        "health_status": backend.health_status,
        "circuit": live.circuit,
        "rate_limited_until": live.rate_limited_until.isoformat() if live.rate_limited_until else None,
        "latency_ms": backend.latency_ms,
        "last_checked_at": backend.last_checked_at.isoformat() if backend.last_checked_at else None,
        "last_error": backend.last_error,
        "model_count": backend.model_count,
        "api_key_hint": backend.api_key_hint,
        "per_minute": {
            "requests": round(recent.requests / RATE_MINUTES, 2),
            "errors": round(recent.errors / RATE_MINUTES, 2),
            "failovers": round(recent.failovers / RATE_MINUTES, 2),
        },
        "last_5m": {"requests": recent.requests, "errors": recent.errors, "failovers": recent.failovers},
        "p50_ms": recent.p50_ms,
        "p95_ms": recent.p95_ms,
    }


def _models(statuses: dict, routable_now: dict[str, bool]) -> list[dict]:
    """Each model with the backends serving it (best priority first); routable when any of
    them would be sent a request now (the gateway's rule, ``backend_routable``), with the
    reasons when none would."""
    catalogue: dict[str, dict] = {}
    rows = DiscoveredModel.objects.select_related("backend").order_by("model_id", "backend__priority", "backend__name")
    for row in rows:
        status = statuses.get(row.backend.name)
        routable = routable_now.get(row.backend.name, False)
        entry = catalogue.setdefault(row.model_id, {"id": row.model_id, "backends": [], "routable": False})
        entry["backends"].append(
            {
                "name": row.backend.name,
                "priority": row.backend.priority,
                "capability": row.capability,
                "routable": routable,
                "status": status.key if status else "unknown",
                "reason": "" if routable or status is None else f"{status.label}: {status.reason}".rstrip(": "),
            }
        )
        entry["routable"] = entry["routable"] or routable
    for entry in catalogue.values():
        entry["why_not"] = (
            ""
            if entry["routable"]
            else "; ".join(f"{b['name']} is {b['reason'] or b['status']}" for b in entry["backends"])
        )
    return list(catalogue.values())
