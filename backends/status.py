"""One word (and its colour) for a backend's state, as the admin and the dashboard show it.

The probe's health alone hid what clients saw: a backend the probe calls healthy can have an
open circuit (clients get 503 ``circuit_open``) or be held back by a 429's Retry-After. The
worst applicable state wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.models import Backend, HealthStatus
from traffic.models import CircuitState
from traffic.selectors import BackendLive

# An error rate this high over the last 5 minutes marks a backend the probe calls healthy
# as degraded (it still receives requests).
DEGRADED_ERROR_RATE = 0.10

# status -> (label, colour); the colours are the dashboard's and the admin's.
STATUSES = {
    "disabled": ("disabled", "#6b7280"),
    "auth_failed": ("auth failed", "#9333ea"),
    "unhealthy": ("unhealthy", "#dc2626"),
    "circuit_open": ("circuit open", "#dc2626"),
    "rate_limited": ("rate-limited", "#ea580c"),
    "degraded": ("degraded", "#d97706"),
    "healthy": ("healthy", "#16a34a"),
    "unknown": ("not checked yet", "#6b7280"),
}


@dataclass(frozen=True)
class BackendStatus:
    key: str
    reason: str = ""

    @property
    def label(self) -> str:
        return STATUSES[self.key][0]

    @property
    def colour(self) -> str:
        return STATUSES[self.key][1]


def backend_status(backend: Backend, live: BackendLive | None = None) -> BackendStatus:
    live = live or BackendLive()
    if not backend.enabled:
        return BackendStatus("disabled", "disabled by an operator")
    if backend.health_status == HealthStatus.AUTH_FAILED:
        return BackendStatus("auth_failed", backend.last_error or "the upstream rejected the API key")
    if backend.health_status == HealthStatus.UNHEALTHY:
        return BackendStatus("unhealthy", backend.last_error or "the last probe failed")
    if live.circuit == CircuitState.OPEN:
        return BackendStatus("circuit_open", "the circuit breaker is open after repeated failures")
    if live.rate_limited_until is not None:
        until = f"{live.rate_limited_until:%H:%M:%S}"
        return BackendStatus("rate_limited", f"rate-limited by the upstream until {until} UTC")
    recent = live.window(5)
    if live.circuit == CircuitState.HALF_OPEN:
        return BackendStatus("degraded", "the circuit breaker is half-open (one trial request)")
    if recent.requests and recent.errors / recent.requests >= DEGRADED_ERROR_RATE:
        return BackendStatus("degraded", f"{recent.errors} of {recent.requests} requests failed in the last 5 minutes")
    if backend.health_status == HealthStatus.HEALTHY:
        return BackendStatus("healthy")
    return BackendStatus("unknown", "no probe has answered yet")
