"""Passive health: a per-process circuit breaker fed by real traffic.

Closed → (N consecutive connect errors, timeouts or 5xx) → open → (cool-down) → half-open:
one trial request decides between closed and open again. The trial is a lease: released
in ``finally`` whatever happens to the request (cancellation included), and expiring on its
own after ``lease_seconds`` should a release ever be missed, so a lost trial cannot keep a
backend out of routing.

A successful health probe after the opening also closes the circuit. Probes run in the
Celery worker, possibly on another machine, so "after" is decided by the backend's count of
successful probes (``BackendRoute.healthy_probes``), never by comparing clocks.

Shared across instances (``gateway.shared_state``, with ``REDIS_URL``): the board itself does
no IO. Its transitions (opened, closed, Retry-After block, trial started) go into ``outbox``,
a bounded deque a background task drains to Redis; what other instances did arrives through
``apply_remote_*``, called by that task on the same event loop. While the task is connected
(``shared_trials``), a half-open circuit takes a trial only when this process holds the
deployment's trial claim, which the task fetches ahead of need, so a request never waits for
Redis.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Lease:
    """The right to send one request to a backend; ``release()`` it when the outcome is known."""

    __slots__ = ("circuit", "expires")

    def __init__(self, circuit: Circuit | None = None, expires: float = 0.0) -> None:
        self.circuit = circuit
        self.expires = expires

    @property
    def is_trial(self) -> bool:
        return self.circuit is not None

    def release(self) -> None:
        circuit, self.circuit = self.circuit, None
        if circuit is not None and circuit.trial is self:
            circuit.trial = None


# A closed circuit hands out this one: nothing to give back.
FREE = Lease()


@dataclass(eq=False)
class Circuit:
    name: str = ""
    failures: int = 0
    opened_at: float | None = None  # monotonic
    # The backend's successful-probe count when the circuit opened.
    opened_probes: int = 0
    trial: Lease | None = None
    # Retry-After: the backend is skipped until then (monotonic).
    blocked_until: float = 0.0
    failovers: int = 0
    # The snapshot entry a probe called unhealthy but a trial request found working. It
    # stays routable until the snapshot changes (a newer probe) or a request fails.
    recovered: object | None = None
    # Shared mode: when the last transition (local or from another instance) happened, wall
    # clock, so a late message never undoes a newer one.
    changed_at: float = 0.0
    # Shared mode: this process may send the half-open trial until then (monotonic).
    trial_claim: float = 0.0
    # Shared mode: a request found the circuit half-open without the claim; ask for one.
    trial_wanted: bool = False


class BreakerBoard:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown: float,
        lease_seconds: float = 600.0,
        clock=time.monotonic,
        wall=time.time,
    ) -> None:
        if failure_threshold < 1 or cooldown < 0 or lease_seconds <= 0:
            raise ValueError("failure_threshold must be >= 1, cooldown >= 0 and lease_seconds > 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._wall = wall
        self._circuits: dict[str, Circuit] = {}
        # Set by ``gateway.shared_state``: transitions to publish, and whether half-open trials
        # need the deployment's claim (only while connected to Redis).
        self.outbox: deque | None = None
        self.shared_trials = False

    def circuit(self, name: str) -> Circuit:
        circuit = self._circuits.get(name)
        if circuit is None:
            circuit = self._circuits[name] = Circuit(name)
        return circuit

    def state(self, name: str, healthy_probes: int = 0) -> str:
        """Read-only, so other threads (the traffic recorder) may ask too."""
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None or healthy_probes > circuit.opened_probes:
            return CLOSED
        if self._clock() - circuit.opened_at >= self.cooldown:
            return HALF_OPEN
        return OPEN

    def blocked(self, name: str) -> bool:
        circuit = self._circuits.get(name)
        return circuit is not None and circuit.blocked_until > 0 and self._clock() < circuit.blocked_until

    def available(self, name: str, healthy_probes: int = 0) -> bool:
        """Could this backend take a request now? (Does not claim a half-open trial.)"""
        circuit = self._circuits.get(name)
        if circuit is None:
            return True
        if circuit.blocked_until and self._clock() < circuit.blocked_until:
            return False
        state = self.state(name, healthy_probes)
        if state == CLOSED:
            return True
        if state != HALF_OPEN or self._trial_running(circuit):
            return False
        if self.shared_trials and circuit.trial_claim <= self._clock():
            # Another instance may be sending the trial: wait for this process's claim.
            circuit.trial_wanted = True
            return False
        return True

    def acquire(self, name: str, healthy_probes: int = 0) -> Lease | None:
        """A lease to send, or None. While half-open only one trial lease is out at a time."""
        if not self.available(name, healthy_probes):
            return None
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return FREE
        if healthy_probes > circuit.opened_probes:
            # A probe succeeded since the opening: closed, without a trial.
            self._close(circuit)
            return FREE
        return self._trial(circuit)

    def acquire_trial(self, name: str) -> Lease | None:
        """One request at a time may test a backend that routing would otherwise skip (a probe
        said it is down): the first one after it comes back restores it without waiting for
        the next probe."""
        circuit = self.circuit(name)
        if self._trial_running(circuit):
            return None
        return self._trial(circuit)

    def record_success(self, name: str) -> None:
        circuit = self._circuits.get(name)
        if circuit is not None:
            self._close(circuit)

    def record_failure(self, name: str, healthy_probes: int = 0) -> bool:
        """Count a connect error, timeout or 5xx. Returns True when this opened the circuit."""
        circuit = self.circuit(name)
        circuit.failures += 1
        circuit.recovered = None
        trial = circuit.trial is not None and circuit.opened_at is not None
        if trial or (circuit.opened_at is None and circuit.failures >= self.failure_threshold):
            circuit.opened_at = self._clock()
            circuit.opened_probes = healthy_probes
            circuit.trial_claim = 0.0
            if self.outbox is not None:
                circuit.changed_at = now = self._wall()
                self.outbox.append(("open", name, now, healthy_probes))
            return True
        return False

    def record_neutral(self, name: str) -> None:
        """The backend answered (e.g. a 4xx): it is up, but this says nothing about failures."""
        circuit = self._circuits.get(name)
        if circuit is not None and circuit.opened_at is not None and circuit.trial is not None:
            self._close(circuit)

    def mark_recovered(self, name: str, route: object) -> None:
        self.circuit(name).recovered = route

    def recovered(self, name: str, route: object) -> bool:
        circuit = self._circuits.get(name)
        return circuit is not None and circuit.recovered is route

    def block(self, name: str, seconds: float) -> None:
        self.circuit(name).blocked_until = self._clock() + seconds
        if self.outbox is not None:
            self.outbox.append(("block", name, self._wall() + seconds, 0))

    def blocked_for(self, name: str) -> float:
        circuit = self._circuits.get(name)
        return max(0.0, circuit.blocked_until - self._clock()) if circuit is not None else 0.0

    def count_failover(self, name: str) -> None:
        self.circuit(name).failovers += 1

    def failovers(self) -> dict[str, int]:
        return {name: c.failovers for name, c in self._circuits.items() if c.failovers}

    def _trial(self, circuit: Circuit) -> Lease:
        circuit.trial = lease = Lease(circuit, self._clock() + self.lease_seconds)
        if self.shared_trials and circuit.opened_at is not None and self.outbox is not None:
            # Hold the deployment's claim as long as the trial may take.
            circuit.trial_claim = lease.expires
            self.outbox.append(("trial", circuit.name, 0.0, 0))
        return lease

    def _trial_running(self, circuit: Circuit) -> bool:
        trial = circuit.trial
        if trial is None:
            return False
        if self._clock() >= trial.expires:
            # Released by nobody: the request that held it is long gone.
            trial.release()
            return False
        return True

    def _close(self, circuit: Circuit) -> None:
        if circuit.opened_at is not None and self.outbox is not None:
            circuit.changed_at = now = self._wall()
            self.outbox.append(("closed", circuit.name, now, 0))
        circuit.failures = 0
        circuit.opened_at = None
        circuit.opened_probes = 0
        circuit.trial_claim = 0.0
        circuit.trial_wanted = False
        if circuit.trial is not None:
            circuit.trial.release()

    # --- what other instances did (``gateway.shared_state``, on the serving loop) ------------
    def apply_remote_open(self, name: str, opened_wall: float, probes: int) -> bool:
        circuit = self.circuit(name)
        if opened_wall <= circuit.changed_at:
            return False
        circuit.changed_at = opened_wall
        # The other instance's clock, turned into this process's monotonic one.
        circuit.opened_at = self._clock() - max(0.0, self._wall() - opened_wall)
        circuit.opened_probes = probes
        circuit.failures = max(circuit.failures, self.failure_threshold)
        circuit.recovered = None
        circuit.trial_claim = 0.0
        return True

    def apply_remote_close(self, name: str, closed_wall: float) -> bool:
        circuit = self._circuits.get(name)
        if circuit is None or closed_wall <= circuit.changed_at:
            return False
        circuit.changed_at = closed_wall
        circuit.failures = 0
        circuit.opened_at = None
        circuit.opened_probes = 0
        circuit.trial_claim = 0.0
        circuit.trial_wanted = False
        return True

    def apply_remote_block(self, name: str, until_wall: float) -> bool:
        until = self._clock() + (until_wall - self._wall())
        circuit = self.circuit(name)
        if until <= circuit.blocked_until:
            return False
        circuit.blocked_until = until
        return True

    def half_open_waiting(self) -> list[tuple[str, Circuit]]:
        """Half-open circuits without this process's claim (the shared-state task asks for one)."""
        now = self._clock()
        return [
            (name, c)
            for name, c in self._circuits.items()
            if c.opened_at is not None and now - c.opened_at >= self.cooldown and c.trial_claim <= now
        ]

    def grant_claim(self, name: str, seconds: float) -> None:
        circuit = self.circuit(name)
        circuit.trial_claim = self._clock() + seconds
        circuit.trial_wanted = False
