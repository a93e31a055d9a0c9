"""The reference controller's memory of workers, without IO (the clock is passed in).

A PUT is an upsert keyed by worker id. A heartbeat that leaves the model list out is only
accepted for a worker whose list under that hash is held already: otherwise 404 (unknown
id) or 409 (unknown hash), and the worker sends its full registration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eldric_cloud.controller.protocol import MODELS_UNKNOWN, WORKER_NOT_FOUND, error_body

ONLINE = "online"
OFFLINE = "offline"
DEREGISTERED = "deregistered"


@dataclass
class WorkerRecord:
    worker_id: str
    payload: dict
    models: list[str]
    models_hash: str
    registered_at: float  # wall clock, for display
    last_seen_wall: float
    last_seen: float  # the registry's clock, for offline marking
    heartbeats: int = 0
    registrations: int = 0
    deregistered: bool = False
    extra: dict = field(default_factory=dict)


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class WorkerRegistry:
    def __init__(
        self,
        *,
        offline_after: float = 90.0,
        max_workers: int = 10_000,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.offline_after = offline_after
        self.max_workers = max_workers
        self._clock = clock
        self._wall = wall_clock
        self._workers: dict[str, WorkerRecord] = {}
        self._reported_offline: set[str] = set()

    def upsert(self, worker_id: str, payload: dict) -> tuple[int, dict]:
        record = self._workers.get(worker_id)
        models = payload.get("models")
        digest = payload["models_hash"]
        if models is None:
            if record is None or record.deregistered:
                return 404, error_body(f"Unknown worker {worker_id}: register again.", code=WORKER_NOT_FOUND)
            if record.models_hash != digest:
                return 409, error_body(
                    f"No model list under {digest} for {worker_id}: send the list.",
                    code=MODELS_UNKNOWN,
                    param="models",
                )
        if record is None and len(self._workers) >= self.max_workers and not self._evict_one():
            return 503, error_body("The registry is full.", code="registry_full", type_="server_error")
        now, wall = self._clock(), self._wall()
        created = record is None
        if record is None:
            record = WorkerRecord(
                worker_id=worker_id,
                payload={},
                models=[],
                models_hash="",
                registered_at=wall,
                last_seen_wall=wall,
                last_seen=now,
            )
            self._workers[worker_id] = record
        if models is not None:
            record.models = list(models)
            record.models_hash = digest
            record.registrations += 1
        record.payload = {k: v for k, v in payload.items() if k != "models"}
        record.deregistered = False
        record.last_seen = now
        record.last_seen_wall = wall
        record.heartbeats += 1
        self._reported_offline.discard(worker_id)
        return (201 if created else 200), {
            "worker_id": worker_id,
            "status": ONLINE,
            "models_hash": record.models_hash,
            "offline_after_seconds": self.offline_after,
        }

    def deregister(self, worker_id: str) -> bool:
        record = self._workers.get(worker_id)
        if record is None or record.deregistered:
            return False
        record.deregistered = True
        return True

    def status_of(self, record: WorkerRecord) -> str:
        if record.deregistered:
            return DEREGISTERED
        return ONLINE if self._clock() - record.last_seen <= self.offline_after else OFFLINE

    def describe(self, record: WorkerRecord) -> dict:
        return {
            **record.payload,
            "worker_id": record.worker_id,
            # The controller's word (online, offline, deregistered); the worker's own is "health".
            "status": self.status_of(record),
            "health": record.payload.get("status"),
            "models": record.models,
            "models_hash": record.models_hash,
            "registered_at": _iso(record.registered_at),
            "last_seen_at": _iso(record.last_seen_wall),
            "seconds_since_heartbeat": round(self._clock() - record.last_seen, 1),
            "heartbeats": record.heartbeats,
            "registrations": record.registrations,
        }

    def get(self, worker_id: str) -> dict | None:
        record = self._workers.get(worker_id)
        return self.describe(record) if record is not None else None

    def listing(self, status: str | None = None) -> list[dict]:
        described = [self.describe(r) for r in self._workers.values()]
        return [w for w in described if status is None or w["status"] == status]

    def newly_offline(self) -> list[str]:
        """Workers gone offline since the last call (for the stub's log)."""
        gone = [
            worker_id
            for worker_id, record in self._workers.items()
            if worker_id not in self._reported_offline and self.status_of(record) == OFFLINE
        ]
        self._reported_offline.update(gone)
        return gone

    def _evict_one(self) -> bool:
        # Room for a new worker: forget the longest-silent one that is offline or deregistered.
        candidates = [r for r in self._workers.values() if self.status_of(r) != ONLINE]
        if not candidates:
            return False
        oldest = min(candidates, key=lambda r: r.last_seen)
        del self._workers[oldest.worker_id]
        self._reported_offline.discard(oldest.worker_id)
        return True
