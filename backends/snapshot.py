"""The routing snapshot: an immutable, ORM-free picture of every backend and model.

Built by ``selectors.routing_snapshot_build`` off the request path and swapped in whole by
the gateway, so a chat request only ever reads plain frozen objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Health states that take a backend out of routing until it recovers.
EXCLUDED_HEALTH = frozenset({"unhealthy", "auth_failed"})


@dataclass(frozen=True, slots=True)
class BackendRoute:
    name: str
    kind: str
    url: str
    api_key: str = field(repr=False)
    api_key_hint: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    priority: int = 100
    enabled: bool = True
    source: str = "api"
    health: str = "unknown"
    latency_ms: float | None = None
    last_error: str = ""
    # How many probes have succeeded; one newer than a circuit's opening closes the circuit.
    healthy_probes: int = 0
    model_count: int = 0

    @property
    def probe_excluded(self) -> bool:
        return self.health in EXCLUDED_HEALTH


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    version: int = -1
    worker_id: str = ""
    backends: dict[str, BackendRoute] = field(default_factory=dict)
    # model id -> enabled backends that list it, best priority first.
    model_routes: dict[str, tuple[BackendRoute, ...]] = field(default_factory=dict)
    default_backend: str = ""
    models_body: bytes = b'{"object":"list","data":[]}'
    # model id -> disabled backends that list it, for models no enabled backend lists: such a
    # model is unavailable, not unknown, so it is not sent to the default backend.
    disabled_models: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def for_org(self, organisation: str) -> RoutingSnapshot:
        """What an organisation's requests may route to ("" means the default organisation).
        (Per-organisation views are filled in with backend ownership.)"""
        return self

    def default_route(self) -> BackendRoute | None:
        route = self.backends.get(self.default_backend)
        return route if route is not None and route.enabled else None


def snapshot_assemble(
    *,
    version: int,
    worker_id: str,
    routes: list[BackendRoute],
    models: dict[str, list[tuple[str, int | None]]],
    default_backend: str,
) -> RoutingSnapshot:
    """Index backends and their models for routing. ``models`` maps backend -> [(id, created)]."""
    ordered = sorted(routes, key=lambda r: (r.priority, r.name))
    model_routes: dict[str, list[BackendRoute]] = {}
    catalogue: dict[str, dict] = {}
    disabled: dict[str, list[str]] = {}
    for route in ordered:
        if not route.enabled:
            for model_id, _ in models.get(route.name, ()):
                disabled.setdefault(model_id, []).append(route.name)
            continue
        for model_id, created in models.get(route.name, ()):
            model_routes.setdefault(model_id, []).append(route)
            # The first (best-priority) backend that lists a model owns its catalogue entry.
            catalogue.setdefault(
                model_id,
                {"id": model_id, "object": "model", "created": created or 0, "owned_by": route.name},
            )
    body = json.dumps({"object": "list", "data": list(catalogue.values())}, separators=(",", ":")).encode()
    return RoutingSnapshot(
        version=version,
        worker_id=worker_id,
        backends={r.name: r for r in ordered},
        model_routes={m: tuple(rs) for m, rs in model_routes.items()},
        default_backend=default_backend,
        models_body=body,
        disabled_models={m: tuple(names) for m, names in disabled.items() if m not in model_routes},
    )
