"""Reads: live backend state and recent traffic, for the management API and the admin."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from traffic.buckets import LATENCY_BOUNDS, percentile
from traffic.models import LATENCY_FIELDS, BackendLiveState, CircuitState, TrafficMinute

WINDOWS = (5, 60)  # minutes
# Worst first: one instance with an open circuit makes the backend's circuit open.
SEVERITY = {CircuitState.OPEN: 2, CircuitState.HALF_OPEN: 1, CircuitState.CLOSED: 0}


@dataclass(frozen=True)
class TrafficWindow:
    minutes: int
    requests: int = 0
    errors: int = 0
    failovers: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


@dataclass(frozen=True)
class BackendLive:
    circuit: str = CircuitState.CLOSED
    rate_limited_until: datetime | None = None
    windows: dict[int, TrafficWindow] = field(default_factory=dict)

    @property
    def rate_limited(self) -> bool:
        return self.rate_limited_until is not None

    @property
    def blocked(self) -> bool:
        """Clients are being turned away right now (open circuit, or a 429's Retry-After)."""
        return self.circuit == CircuitState.OPEN or self.rate_limited

    def window(self, minutes: int) -> TrafficWindow:
        return self.windows.get(minutes) or TrafficWindow(minutes)


def backend_circuits(
    *, names: list[str] | None = None, now: datetime | None = None
) -> dict[str, tuple[str, datetime | None]]:
    """backend -> (worst circuit state, latest rate-limited-until still ahead), over the
    instances that reported within ``ELDRIC_TRAFFIC_LIVE_STATE_WINDOW_SECONDS``. A stopped
    instance's last word fades out after that window. Compares the writers' wall clocks
    with ours: instances need synchronised clocks (NTP); only display depends on it."""
    now = now or timezone.now()
    fresh = now - timedelta(seconds=settings.ELDRIC_TRAFFIC_LIVE_STATE_WINDOW_SECONDS)
    rows = BackendLiveState.objects.filter(updated_at__gte=fresh)
    if names is not None:
        rows = rows.filter(backend__in=names)
    result: dict[str, tuple[str, datetime | None]] = {}
    for backend, circuit, until in rows.values_list("backend", "circuit", "rate_limited_until"):
        worst, latest = result.get(backend, (CircuitState.CLOSED, None))
        if SEVERITY.get(circuit, 0) > SEVERITY.get(worst, 0):
            worst = circuit
        if until is not None and until > now and (latest is None or until > latest):
            latest = until
        result[backend] = (worst, latest)
    return result


def backend_traffic(
    *, names: list[str] | None = None, now: datetime | None = None
) -> dict[str, dict[int, TrafficWindow]]:
    """backend -> {minutes: TrafficWindow} for the last 5 and 60 minutes, in one query.
    A window covers the minute buckets that started within it."""
    now = now or timezone.now()
    since = {minutes: now - timedelta(minutes=minutes) for minutes in WINDOWS}
    rows = TrafficMinute.objects.filter(bucket__gte=since[max(WINDOWS)])
    if names is not None:
        rows = rows.filter(backend__in=names)
    aggregates = {}
    for minutes in WINDOWS:
        within = Q(bucket__gte=since[minutes])
        for name in ("requests", "errors", "failovers", *LATENCY_FIELDS):
            aggregates[f"{name}__{minutes}"] = Sum(name, filter=within, default=0)
    result: dict[str, dict[int, TrafficWindow]] = {}
    for row in rows.values("backend").annotate(**aggregates).order_by("backend"):
        windows = {}
        for minutes in WINDOWS:
            counts = [row[f"{name}__{minutes}"] for name in LATENCY_FIELDS]
            windows[minutes] = TrafficWindow(
                minutes=minutes,
                requests=row[f"requests__{minutes}"],
                errors=row[f"errors__{minutes}"],
                failovers=row[f"failovers__{minutes}"],
                p50_ms=_ms(percentile(LATENCY_BOUNDS, counts, 0.5)),
                p95_ms=_ms(percentile(LATENCY_BOUNDS, counts, 0.95)),
            )
        result[row["backend"]] = windows
    return result


def backend_live(*, names: list[str] | None = None, now: datetime | None = None) -> dict[str, BackendLive]:
    """Everything live about each backend (only those with something to say are present;
    use ``.get(name, BackendLive())``)."""
    now = now or timezone.now()
    circuits = backend_circuits(names=names, now=now)
    traffic = backend_traffic(names=names, now=now)
    return {
        name: BackendLive(
            circuit=circuits.get(name, (CircuitState.CLOSED, None))[0],
            rate_limited_until=circuits.get(name, (CircuitState.CLOSED, None))[1],
            windows=traffic.get(name, {}),
        )
        for name in circuits.keys() | traffic.keys()
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
