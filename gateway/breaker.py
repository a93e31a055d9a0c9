"""Passive health: a per-process circuit breaker fed by real traffic.

Closed → (N consecutive connect errors, timeouts or 5xx) → open → (cool-down) → half-open:
one trial request decides between closed and open again. A successful health probe newer
than the opening also closes the circuit, so both paths recover on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class Circuit:
    failures: int = 0
    opened_at: float | None = None  # monotonic
    opened_wall: float | None = None  # wall clock, compared with probe times
    trial_in_flight: bool = False
    # A 429's Retry-After: the backend is skipped until then (monotonic).
    blocked_until: float = 0.0
    failovers: int = 0


class BreakerBoard:
    def __init__(self, *, failure_threshold: int, cooldown: float, clock=time.monotonic, wall=time.time) -> None:
        if failure_threshold < 1 or cooldown < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._wall = wall
        self._circuits: dict[str, Circuit] = {}

    def circuit(self, name: str) -> Circuit:
        circuit = self._circuits.get(name)
        if circuit is None:
            circuit = self._circuits[name] = Circuit()
        return circuit

    def state(self, name: str, healthy_since: float | None = None) -> str:
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return CLOSED
        if healthy_since is not None and circuit.opened_wall is not None and healthy_since > circuit.opened_wall:
            self._close(circuit)
            return CLOSED
        if self._clock() - circuit.opened_at >= self.cooldown:
            return HALF_OPEN
        return OPEN

    def available(self, name: str, healthy_since: float | None = None) -> bool:
        """Could this backend take a request now? (Does not claim a half-open trial.)"""
        circuit = self._circuits.get(name)
        if circuit is None:
            return True
        if circuit.blocked_until and self._clock() < circuit.blocked_until:
            return False
        state = self.state(name, healthy_since)
        return state == CLOSED or (state == HALF_OPEN and not circuit.trial_in_flight)

    def acquire(self, name: str, healthy_since: float | None = None) -> bool:
        """Claim the right to send; in half-open only one request at a time gets it."""
        if not self.available(name, healthy_since):
            return False
        circuit = self._circuits.get(name)
        if circuit is not None and self.state(name, healthy_since) == HALF_OPEN:
            circuit.trial_in_flight = True
        return True

    def record_success(self, name: str) -> None:
        circuit = self._circuits.get(name)
        if circuit is not None:
            self._close(circuit)

    def record_failure(self, name: str) -> bool:
        """Count a connect error, timeout or 5xx. Returns True when this opened the circuit."""
        circuit = self.circuit(name)
        circuit.failures += 1
        half_open_trial = circuit.trial_in_flight
        circuit.trial_in_flight = False
        if half_open_trial or (circuit.opened_at is None and circuit.failures >= self.failure_threshold):
            circuit.opened_at = self._clock()
            circuit.opened_wall = self._wall()
            return True
        return False

    def record_neutral(self, name: str) -> None:
        """The backend answered (e.g. a 4xx): it is up, but this says nothing about failures."""
        circuit = self._circuits.get(name)
        if circuit is not None and circuit.trial_in_flight:
            self._close(circuit)

    def block(self, name: str, seconds: float) -> None:
        self.circuit(name).blocked_until = self._clock() + seconds

    def count_failover(self, name: str) -> None:
        self.circuit(name).failovers += 1

    def failovers(self) -> dict[str, int]:
        return {name: c.failovers for name, c in self._circuits.items() if c.failovers}

    @staticmethod
    def _close(circuit: Circuit) -> None:
        circuit.failures = 0
        circuit.opened_at = None
        circuit.opened_wall = None
        circuit.trial_in_flight = False
