"""Turning finished requests into roll-up increments, in plain Python (no Django, no IO).

The flush thread drains the recorder's queue into a ``Batch``: one ``Counters`` per
(minute, backend, model) and one count per (minute, backend, model, kind, status, code).
The same batch feeds the database roll-ups and the Prometheus metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from traffic.buckets import LATENCY_BOUNDS, LATENCY_BUCKETS, OVERHEAD_BOUNDS, OVERHEAD_BUCKETS, bucket_index

if TYPE_CHECKING:
    from gateway.context import RequestContext

OTHER = "other"
# Error codes and attempt outcomes come partly from upstreams: only tame ones become labels.
CODE_CHARS = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_MODEL_LENGTH = 255
MAX_BACKEND_LENGTH = 64

MinuteKey = tuple[int, str, str]  # (epoch seconds of the minute, backend, model)
EventKey = tuple[int, str, str, str, int, str]  # (minute, backend, model, kind, status, code)


class LabelGuard:
    """Lets through the first ``limit`` distinct values and answers "other" after that, so
    no stream of odd values (a misbehaving upstream's error codes) grows the label set."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER
        self._seen.add(value)
        return value


@dataclass(slots=True)
class Counters:
    requests: int = 0
    errors: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    failovers: int = 0
    client_disconnects: int = 0
    streams: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    latency_count: int = 0
    ttft_count: int = 0
    latency_sum: float = 0.0
    ttft_sum: float = 0.0
    overhead_sum: float = 0.0
    latency_hist: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)
    ttft_hist: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)

    def add(self, other: Counters) -> None:
        for name in SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for index in range(LATENCY_BUCKETS):
            self.latency_hist[index] += other.latency_hist[index]
            self.ttft_hist[index] += other.ttft_hist[index]

    def columns(self) -> dict[str, float]:
        """Column name -> increment, in ``traffic.models.ADDED_FIELDS`` order."""
        values: dict[str, float] = {name: getattr(self, name) for name in SCALARS}
        values.update({f"latency_b{i:02d}": n for i, n in enumerate(self.latency_hist)})
        values.update({f"ttft_b{i:02d}": n for i, n in enumerate(self.ttft_hist)})
        return values


SCALARS = tuple(name for name in Counters.__slots__ if name not in ("latency_hist", "ttft_hist"))


@dataclass(slots=True)
class Batch:
    counters: dict[MinuteKey, Counters] = field(default_factory=dict)
    events: dict[EventKey, int] = field(default_factory=dict)
    # For Prometheus only (never stored): requests per (backend, model, status class), and
    # the gateway's own overhead per backend, bucketed.
    by_class: dict[tuple[str, str, str], int] = field(default_factory=dict)
    overhead: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.counters) + len(self.events)

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.counters.values())

    def merge(self, other: Batch) -> None:
        """Add ``other``'s stored parts (counters and events) into this batch."""
        for key, counters in other.counters.items():
            mine = self.counters.get(key)
            if mine is None:
                self.counters[key] = counters
            else:
                mine.add(counters)
        for key, count in other.events.items():
            self.events[key] = self.events.get(key, 0) + count

    def drop_oldest(self, keep: int) -> tuple[int, int]:
        """Forget the oldest minutes until at most ``keep`` rows are left.
        Returns (rows, requests) dropped."""
        minutes = sorted({key[0] for key in self.counters} | {key[0] for key in self.events})
        rows = requests = 0
        for minute in minutes:
            if len(self) <= keep:
                break
            for key in [k for k in self.counters if k[0] == minute]:
                requests += self.counters.pop(key).requests
                rows += 1
            for key in [k for k in self.events if k[0] == minute]:
                del self.events[key]
                rows += 1
        return rows, requests


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "none"


class Aggregator:
    """Reads finished ``RequestContext`` objects (duck-typed) into a ``Batch``."""

    def __init__(self, *, max_models: int, max_codes: int) -> None:
        self.model_label = LabelGuard(max_models)
        self.code_label = LabelGuard(max_codes)

    def model_of(self, ctx: RequestContext) -> str:
        # A client-chosen model name never becomes a label: only a catalogue model does.
        model = ctx.model if ctx.model_known and isinstance(ctx.model, str) else ""
        if not model or len(model) > MAX_MODEL_LENGTH:
            return OTHER
        return self.model_label(model)

    def code_of(self, code) -> str:
        code = "" if code is None else str(code)
        if not code:
            return ""
        return self.code_label(code) if CODE_CHARS.match(code) else OTHER

    def add(self, batch: Batch, ctx: RequestContext) -> None:
        # Everything is read before anything is counted, so a context that fails to read
        # leaves the batch as it was.
        minute = int(ctx.received_at // 60) * 60
        backend = (ctx.backend or "")[:MAX_BACKEND_LENGTH]
        model = self.model_of(ctx)
        status = ctx.status if isinstance(ctx.status, int) else 0
        error = ctx.is_error
        code = self.code_of(ctx.error_code) if error else ""
        usage = ctx.usage
        latency, ttft, overhead = ctx.latency, ctx.time_to_first_byte, ctx.overhead
        failovers = [
            (
                (attempt.backend or "")[:MAX_BACKEND_LENGTH],
                attempt.status if isinstance(attempt.status, int) else 0,
                self.code_of(attempt.outcome),
            )
            for attempt in ctx.failovers
        ]

        counters = _counters(batch, (minute, backend, model))
        counters.requests += 1
        klass = status_class(status)
        batch.by_class[(backend, model, klass)] = batch.by_class.get((backend, model, klass), 0) + 1
        if error:
            counters.errors += 1
            if 400 <= status < 500:
                counters.errors_4xx += 1
            elif status >= 500:
                counters.errors_5xx += 1
            _event(batch, (minute, backend, model, "error", status, code))
        if ctx.stream:
            counters.streams += 1
        if ctx.client_disconnected:
            counters.client_disconnects += 1
        if usage is not None:
            counters.prompt_tokens += usage.prompt_tokens
            counters.completion_tokens += usage.completion_tokens
            counters.cached_tokens += usage.cached_tokens
            counters.reasoning_tokens += usage.reasoning_tokens
        if latency is not None and latency >= 0:
            counters.latency_count += 1
            counters.latency_sum += latency
            counters.latency_hist[bucket_index(LATENCY_BOUNDS, latency)] += 1
        if ttft is not None and ttft >= 0:
            counters.ttft_count += 1
            counters.ttft_sum += ttft
            counters.ttft_hist[bucket_index(LATENCY_BOUNDS, ttft)] += 1
        if overhead is not None:
            counters.overhead_sum += overhead
            hist = batch.overhead.get(backend)
            if hist is None:
                hist = batch.overhead[backend] = [0.0] + [0] * OVERHEAD_BUCKETS  # [sum, buckets...]
            hist[0] += overhead
            hist[1 + bucket_index(OVERHEAD_BOUNDS, overhead)] += 1
        for failed, attempt_status, outcome in failovers:
            # Counted on the backend that failed, with how it failed.
            _counters(batch, (minute, failed, model)).failovers += 1
            _event(batch, (minute, failed, model, "failover", attempt_status, outcome))


def _counters(batch: Batch, key: MinuteKey) -> Counters:
    counters = batch.counters.get(key)
    if counters is None:
        counters = batch.counters[key] = Counters()
    return counters


def _event(batch: Batch, key: EventKey) -> None:
    batch.events[key] = batch.events.get(key, 0) + 1
