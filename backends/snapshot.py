"""The routing snapshot: an immutable, ORM-free picture of every backend and model.

Built by ``selectors.routing_snapshot_build`` off the request path and swapped in whole by
the gateway, so a chat request only ever reads plain frozen objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from backends.capabilities import listed
from orgs.models import DEFAULT_ORGANISATION

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
    # The owning organisation's slug.
    organisation: str = DEFAULT_ORGANISATION
    # Place in configuration order (flags/config file, then creation): Free routes by it.
    config_order: int = 0
    # Serves OpenAI's Responses API itself: /v1/responses is passed through, not translated.
    responses_api: bool = False

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
    # model id -> its catalogue ``created`` (the upstream's, else when it was discovered), for
    # GET /v1/models/{id}.
    model_created: dict[str, int] = field(default_factory=dict)
    # model id -> what each of ``model_routes[id]`` says the model is for (``backends.capabilities``),
    # in the same order: the gateway refuses a request the model cannot serve without an ORM read.
    model_capabilities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # model id -> disabled backends that list it, for models no enabled backend lists: such a
    # model is unavailable, not unknown, so it is not sent to the default backend.
    disabled_models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # organisation slug -> the snapshot restricted to what it may use, precomputed at build
    # time. Empty for a snapshot that is itself a view (or assembled without organisations).
    views: dict[str, RoutingSnapshot] = field(default_factory=dict, repr=False)

    def for_org(self, organisation: str) -> RoutingSnapshot:
        """What an organisation's requests may route to: its own backends, plus the default
        organisation's when it shares them. "" and unknown slugs mean the default organisation."""
        views = self.views
        if not views:
            return self
        view = views.get(organisation)
        if view is None:
            view = views.get(DEFAULT_ORGANISATION, self)
        return view

    def default_route(self) -> BackendRoute | None:
        route = self.backends.get(self.default_backend)
        return route if route is not None and route.enabled else None


def snapshot_assemble(
    *,
    version: int,
    worker_id: str,
    routes: list[BackendRoute],
    models: dict[str, list[tuple]],
    default_backend: str,
    organisations: dict[str, bool] | None = None,
    priority_routing: dict[str, bool] | None = None,
) -> RoutingSnapshot:
    """Index backends and their models for routing. ``models`` maps backend -> [(id, created,
    capability)]; without the capability (a 2-tuple) it is unknown.

    With ``organisations`` (slug -> shares the default organisation's backends), a view per
    organisation is precomputed. ``priority_routing`` (slug -> whether its license has it;
    missing means yes) orders each view's backends by priority or else by configuration order.
    """
    snapshot = _assemble(
        version=version, worker_id=worker_id, routes=routes, models=models, default_backend=default_backend
    )
    if organisations is None:
        return snapshot
    priority_routing = priority_routing or {}
    views = {}
    # Organisations that see the same backends in the same order share one view: most have no
    # backends of their own, and a view over a big catalogue costs as much as the snapshot.
    built: dict[tuple[tuple[str, ...], bool], RoutingSnapshot] = {(tuple(r.name for r in routes), True): snapshot}
    for slug, shares_default in {**organisations, DEFAULT_ORGANISATION: False}.items():
        visible = [
            r for r in routes if r.organisation == slug or (shares_default and r.organisation == DEFAULT_ORGANISATION)
        ]
        by_priority = priority_routing.get(slug, True)
        shape = (tuple(r.name for r in visible), by_priority)
        if shape not in built:
            built[shape] = _assemble(
                version=version,
                worker_id=worker_id,
                routes=visible,
                models=models,
                # The default backend applies only where the organisation may use it.
                default_backend=default_backend if default_backend in shape[0] else "",
                by_priority=by_priority,
            )
        views[slug] = built[shape]
    return RoutingSnapshot(
        version=snapshot.version,
        worker_id=snapshot.worker_id,
        backends=snapshot.backends,
        model_routes=snapshot.model_routes,
        default_backend=snapshot.default_backend,
        models_body=snapshot.models_body,
        model_created=snapshot.model_created,
        model_capabilities=snapshot.model_capabilities,
        disabled_models=snapshot.disabled_models,
        views=views,
    )


def _assemble(
    *,
    version: int,
    worker_id: str,
    routes: list[BackendRoute],
    models: dict[str, list[tuple]],
    default_backend: str,
    by_priority: bool = True,
) -> RoutingSnapshot:
    # Without priority routing (Free), a model goes to its first healthy backend in
    # configuration order.
    order = (lambda r: (r.priority, r.name)) if by_priority else (lambda r: (r.config_order, r.name))
    ordered = sorted(routes, key=order)
    model_routes: dict[str, list[BackendRoute]] = {}
    model_capabilities: dict[str, list[str]] = {}
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    catalogue: dict[str, dict] = {}
    disabled: dict[str, list[str]] = {}
    for route in ordered:
        if not route.enabled:
            for model_id, *_ in models.get(route.name, ()):
                disabled.setdefault(model_id, []).append(route.name)
            continue
        for model_id, created, *said in models.get(route.name, ()):
            capability = said[0] if said else ""
            model_routes.setdefault(model_id, []).append(route)
            model_capabilities.setdefault(model_id, []).append(capability)
            # The first (best-priority) backend that lists a model owns its catalogue entry.
            catalogue.setdefault(
                model_id,
                {
                    "id": model_id,
                    "object": "model",
                    "created": created or 0,
                    "owned_by": route.name,
                    "capabilities": listed(capability),
                },
            )
    body = json.dumps({"object": "list", "data": list(catalogue.values())}, separators=(",", ":")).encode()
    return RoutingSnapshot(
        version=version,
        worker_id=worker_id,
        backends={r.name: r for r in ordered},
        model_routes={m: tuple(rs) for m, rs in model_routes.items()},
        default_backend=default_backend,
        models_body=body,
        model_created={model_id: entry["created"] for model_id, entry in catalogue.items()},
        model_capabilities={m: _shared(said, shared) for m, said in model_capabilities.items()},
        disabled_models={m: tuple(names) for m, names in disabled.items() if m not in model_routes},
    )


def _shared(said: list[str], shared: dict[tuple[str, ...], tuple[str, ...]]) -> tuple[str, ...]:
    # A big catalogue has a handful of distinct capability tuples: store each once.
    key = tuple(said)
    return shared.setdefault(key, key)
