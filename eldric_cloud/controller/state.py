"""The client's state machine, without IO: what happened, what to send next, when.

unregistered --success--> registered --failure--> failing --success--> registered
      ^                        |
      +----- 404 / 409 --------+   (the controller forgot us: send the full list at once)

``acked_hash`` is the model hash the controller last acknowledged: while the list keeps that
hash, heartbeats leave the list out. Any failure forgets it, since the controller that
comes back may be a restarted one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from eldric_cloud.controller.backoff import Backoff

UNREGISTERED = "unregistered"
REGISTERED = "registered"
FAILING = "failing"
DEREGISTERED = "deregistered"
DISABLED = "disabled"


@dataclass
class ControllerState:
    heartbeat_seconds: float
    backoff: Backoff = field(default_factory=Backoff)
    rng: Callable[[], float] = random.random
    state: str = UNREGISTERED
    acked_hash: str | None = None
    consecutive_failures: int = 0
    last_success: str | None = None  # ISO times, for /health
    last_attempt: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    registrations: int = 0  # answers to a full registration (list included)
    heartbeats: int = 0  # acknowledged sends, registrations included

    def include_models(self, current_hash: str) -> bool:
        return self.acked_hash != current_hash

    def succeeded(self, *, at: str, models_hash: str, with_models: bool) -> float:
        """Acknowledged. Returns the wait before the next heartbeat."""
        if with_models:
            self.registrations += 1
        self.heartbeats += 1
        self.state = REGISTERED
        self.acked_hash = models_hash
        self.consecutive_failures = 0
        self.last_success = at
        return self.heartbeat_seconds

    def forgotten(self) -> float:
        """404 (unknown id) or 409 (hash without its list): register again now, list included."""
        self.state = UNREGISTERED
        self.acked_hash = None
        return 0.0

    def failed(self, *, at: str, error: str) -> float:
        """Refused, timed out, unreachable. Returns the jittered back-off wait."""
        self.state = FAILING
        self.acked_hash = None
        self.consecutive_failures += 1
        self.last_error = error
        self.last_error_at = at
        return self.backoff.delay(self.consecutive_failures, self.rng)

    def deregistered(self) -> None:
        self.state = DEREGISTERED
        self.acked_hash = None

    def health(self) -> dict:
        return {
            "state": self.state,
            "registered": self.state == REGISTERED,
            "last_success": self.last_success,
            "last_attempt": self.last_attempt,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "consecutive_failures": self.consecutive_failures,
            "registrations": self.registrations,
            "heartbeats": self.heartbeats,
        }
