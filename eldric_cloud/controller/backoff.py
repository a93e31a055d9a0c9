"""How long to wait before the next try after consecutive failures: doubling, capped, jittered.

"Equal jitter": the n-th wait lies in [d/2, d] with d = min(cap, initial * 2**(n-1)), so many
workers that lost the same controller do not come back in step, yet none retries at once
and none waits past the cap.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    cap: float = 300.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial:
            raise ValueError("back-off needs 0 < initial <= cap")

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` consecutive failures (>= 1)."""
        exponent = min(max(failures, 1) - 1, 62)  # 2**62 overflows nothing; the cap applies anyway
        return min(self.cap, self.initial * (2**exponent))

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = self.ceiling(failures)
        return ceiling / 2 + rng() * ceiling / 2
