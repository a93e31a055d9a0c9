"""Prometheus metrics in multi-process mode: each process writes its own files under
``PROMETHEUS_MULTIPROC_DIR`` and ``GET /metrics`` merges them, so the gateway and the Celery
worker both report.

Metric objects are not registered anywhere (``registry=None``): the merged view comes from
the files, and building an object twice (tests, a restarted recorder) is harmless.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from traffic.aggregate import Batch
from traffic.buckets import LATENCY_BOUNDS, OVERHEAD_BOUNDS

CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
HEALTH_STATES = ("unknown", "healthy", "unhealthy", "auth_failed")
TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning")


def exposition(path: str) -> bytes:
    """Every process's metrics, merged, in the Prometheus text format."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


def _histogram_add(child, sum_: float, counts) -> None:
    """Add pre-bucketed observations to a histogram child. The buckets are the same bounds,
    kept per bucket (not cumulative) as the client keeps them, so this equals observing
    each value; it costs one write per bucket instead of one per request."""
    if sum_:
        child._sum.inc(sum_)
    for index, count in enumerate(counts):
        if count:
            child._buckets[index].inc(count)


class GatewayMetrics:
    """What the gateway process exports; updated by the recorder's flush thread only."""

    def __init__(self) -> None:
        kw = {"registry": None}
        self.requests = Counter("eldric_requests", "Requests answered", ["backend", "model", "status_class"], **kw)
        self.errors = Counter(
            "eldric_errors",
            "Error answers (status >= 400, or none)",
            ["backend", "model", "status_class", "code"],
            **kw,
        )
        self.failovers = Counter(
            "eldric_failovers", "Failed attempts handed over to the next backend", ["backend", "model", "outcome"], **kw
        )
        self.client_disconnects = Counter(
            "eldric_client_disconnects", "Requests the client abandoned", ["backend", "model"], **kw
        )
        self.tokens = Counter("eldric_tokens", "Tokens reported by upstreams", ["backend", "model", "kind"], **kw)
        self.latency = Histogram(
            "eldric_request_duration_seconds", "Whole request", ["backend", "model"], buckets=LATENCY_BOUNDS, **kw
        )
        self.ttfb = Histogram(
            "eldric_time_to_first_byte_seconds",
            "Until the first byte reached the client (time to first token for streams)",
            ["backend", "model"],
            buckets=LATENCY_BOUNDS,
            **kw,
        )
        self.overhead = Histogram(
            "eldric_overhead_seconds", "Time the gateway itself added", ["backend"], buckets=OVERHEAD_BOUNDS, **kw
        )
        self.circuit = Gauge(
            "eldric_backend_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open (worst across live processes)",
            ["backend"],
            multiprocess_mode="livemax",
            **kw,
        )
        self.rate_limited = Gauge(
            "eldric_backend_rate_limited",
            "1 while the backend is skipped after a 429 Retry-After",
            ["backend"],
            multiprocess_mode="livemax",
            **kw,
        )
        self.dropped = Counter(
            "eldric_traffic_dropped_requests",
            "Finished requests whose accounting was dropped (queue full, or the database away too long)",
            ["reason"],
            **kw,
        )
        self.flush_failures = Counter(
            "eldric_traffic_flush_failures", "Roll-up writes that failed and will be retried", **kw
        )

    def apply(self, batch: Batch) -> None:
        for (backend, model, klass), count in batch.by_class.items():
            self.requests.labels(backend, model, klass).inc(count)
        per_series: dict[tuple[str, str], list] = {}
        for (_minute, backend, model), c in batch.counters.items():
            per_series.setdefault((backend, model), []).append(c)
        for (backend, model), items in per_series.items():
            tokens = {
                "prompt": sum(c.prompt_tokens for c in items),
                "completion": sum(c.completion_tokens for c in items),
                "cached": sum(c.cached_tokens for c in items),
                "reasoning": sum(c.reasoning_tokens for c in items),
            }
            for kind, count in tokens.items():
                if count:
                    self.tokens.labels(backend, model, kind).inc(count)
            disconnects = sum(c.client_disconnects for c in items)
            if disconnects:
                self.client_disconnects.labels(backend, model).inc(disconnects)
            if any(c.latency_count for c in items):
                _histogram_add(
                    self.latency.labels(backend, model),
                    sum(c.latency_sum for c in items),
                    [sum(col) for col in zip(*(c.latency_hist for c in items), strict=True)],
                )
            if any(c.ttft_count for c in items):
                _histogram_add(
                    self.ttfb.labels(backend, model),
                    sum(c.ttft_sum for c in items),
                    [sum(col) for col in zip(*(c.ttft_hist for c in items), strict=True)],
                )
        for (_minute, backend, model, kind, status, code), count in batch.events.items():
            if kind == "error":
                klass = f"{status // 100}xx" if 100 <= status < 600 else "none"
                self.errors.labels(backend, model, klass, code).inc(count)
            else:
                self.failovers.labels(backend, model, code).inc(count)
        for backend, (sum_, *counts) in batch.overhead.items():
            _histogram_add(self.overhead.labels(backend), sum_, counts)

    def live(self, states: dict[str, dict], now: float) -> None:
        for backend, state in states.items():
            self.circuit.labels(backend).set(CIRCUIT_VALUES.get(state.get("circuit"), 0))
            until = state.get("rate_limited_until")
            self.rate_limited.labels(backend).set(1 if isinstance(until, int | float) and until > now else 0)


class ProbeMetrics:
    """Health probes, recorded wherever ``backend_health_record`` runs (mostly the worker)."""

    def __init__(self) -> None:
        kw = {"registry": None}
        self.status = Gauge(
            "eldric_backend_health_status",
            "1 for the backend's current health state, 0 for the others (the latest probe wins)",
            ["backend", "status"],
            multiprocess_mode="mostrecent",
            **kw,
        )
        self.latency = Histogram(
            "eldric_backend_probe_duration_seconds", "Health probe latency", ["backend"], buckets=LATENCY_BOUNDS, **kw
        )
        self.last_latency = Gauge(
            "eldric_backend_probe_latency_seconds",
            "Latency of the latest health probe that got an answer",
            ["backend"],
            multiprocess_mode="mostrecent",
            **kw,
        )
        self.probes = Counter("eldric_backend_probes", "Health probes", ["backend", "status"], **kw)

    def record(self, *, backend: str, status: str, latency_ms: float | None) -> None:
        status = str(status)
        for state in HEALTH_STATES:
            self.status.labels(backend, state).set(1 if state == status else 0)
        self.probes.labels(backend, status if status in HEALTH_STATES else "unknown").inc()
        if latency_ms is not None:
            self.latency.labels(backend).observe(latency_ms / 1000)
            self.last_latency.labels(backend).set(latency_ms / 1000)
