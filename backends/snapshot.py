"""The routing snapshot: an immutable, ORM-free picture of every backend and model.

Built by ``selectors.routing_snapshot_build`` off the request path and swapped in whole by
the gateway, so a chat request only ever reads plain frozen objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import repeat
from json.encoder import encode_basestring_ascii

from backends.capabilities import listed
from orgs.models import DEFAULT_ORGANISATION

# A view is updated in place (``_View.updated``) while at most 1/UPDATE_AT_MOST of its backends
# and of its models moved; past that, building it whole is cheaper.
UPDATE_AT_MOST = 8

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
    """A snapshot built from nothing (``SnapshotAssembler.assemble`` says what the arguments are).
    Tests and tools use this; the gateway's refresher keeps one assembler, which reuses what did
    not change since its last build."""
    return SnapshotAssembler().assemble(
        version=version,
        worker_id=worker_id,
        routes=routes,
        models=models,
        default_backend=default_backend,
        organisations=organisations,
        priority_routing=priority_routing,
    )


def _by_priority(route: BackendRoute) -> tuple[int, str]:
    return route.priority, route.name


def _by_configuration(route: BackendRoute) -> tuple[int, str]:
    # Without priority routing (Free), a model goes to its first healthy backend in
    # configuration order.
    return route.config_order, route.name


class SnapshotAssembler:
    """Builds routing snapshots and keeps, from one build to the next, what a big catalogue
    makes costly: each backend's model list in its ready forms (``BackendModels``), and each
    view's indexes (``_View``). A build then costs what changed:

    - a probe, a key or a URL (route objects only): that backend's routes are replaced in a copy
      of the previous index; the catalogue body is kept (``_View.refreshed``);
    - a few backends' model lists, or enabled flags (discovery, an operator): only the models
      they list, before or now, are indexed again, and only the /v1/models entries of backends
      whose share of the catalogue moved are rendered again (``_View.updated``);
    - anything that re-orders a view (priorities, configuration order, a backend added or
      removed): the view is joined again from the kept model lists, with C-level dict and set
      operations for every model only one backend lists (``_View.assembled``).

    Not thread-safe: one refresher uses it at a time. ``model_rows`` and ``decrypted`` are
    the database side's caches (``backends.selectors.routing_snapshot_build``), kept here so
    that one object holds everything a refresher reuses.
    """

    def __init__(self) -> None:
        self._parts: dict[str, BackendModels] = {}
        self._routes: dict[str, BackendRoute] = {}
        self._views: dict[tuple, _View] = {}
        # capability -> (capability,) and the per-model capability tuples of several backends:
        # a big catalogue has a handful of distinct ones, each stored once.
        self._tuples: dict = {}
        # backend pk -> (the version of its model list, its rows), for the selector.
        self.model_rows: dict[int, tuple[object, tuple]] = {}
        # encrypted key -> key: the selector decrypts each backend key once, not every build.
        self.decrypted: dict[str, str] = {}

    def assemble(
        self,
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
        capability)], each id once; without the capability (a 2-tuple) it is unknown.

        With ``organisations`` (slug -> shares the default organisation's backends), a view per
        organisation is precomputed. ``priority_routing`` (slug -> whether its license has it;
        missing means yes) orders each view's backends by priority or else by configuration order.
        Views that list the same backends in the same order are one object, whatever ordered them.
        """
        routes = [self._kept_route(route) for route in routes]
        parts = {route.name: self._part(route.name, models.get(route.name, ())) for route in routes}
        views: dict[tuple, _View] = {}
        build = partial(self._view, views, parts=parts, version=version, worker_id=worker_id)
        snapshot = build(sorted(routes, key=_by_priority), default_backend)
        if organisations is not None:
            priority_routing = priority_routing or {}
            own: dict[str, list[BackendRoute]] = {}
            for route in routes:
                own.setdefault(route.organisation, []).append(route)
            shared = own.get(DEFAULT_ORGANISATION, [])
            by_org = {}
            # Most organisations have no backends of their own: they see the same list.
            visible_of: dict[tuple, RoutingSnapshot] = {}
            for slug, shares_default in {**organisations, DEFAULT_ORGANISATION: False}.items():
                by_priority = priority_routing.get(slug, True)
                key = (slug if slug in own else None, shares_default, by_priority)
                view = visible_of.get(key)
                if view is None:
                    visible = own.get(slug, []) if slug != DEFAULT_ORGANISATION else []
                    if shares_default or slug == DEFAULT_ORGANISATION:
                        visible = visible + shared
                    names = {route.name for route in visible}
                    view = visible_of[key] = build(
                        sorted(visible, key=_by_priority if by_priority else _by_configuration),
                        # The default backend applies only where the organisation may use it.
                        default_backend if default_backend in names else "",
                    )
                by_org[slug] = view
            snapshot = replace(snapshot, views=by_org)
        self._views = views
        self._parts = parts
        self._routes = {route.name: route for route in routes}
        return snapshot

    def _kept_route(self, route: BackendRoute) -> BackendRoute:
        # An unchanged backend keeps its route object, so the previous views' indexes still hold.
        kept = self._routes.get(route.name)
        return kept if kept is not None and kept == route else route

    def _part(self, name: str, rows) -> BackendModels:
        rows = rows if isinstance(rows, tuple) else tuple(rows)
        kept = self._parts.get(name)
        if kept is not None and (kept.rows is rows or kept.rows == rows):
            return kept
        return BackendModels.of(name, rows, self._tuples)

    def _view(
        self,
        views: dict[tuple, _View],
        ordered: list[BackendRoute],
        default_backend: str,
        *,
        parts: dict[str, BackendModels],
        version: int,
        worker_id: str,
    ) -> RoutingSnapshot:
        key = (tuple(route.name for route in ordered), default_backend)
        view = views.get(key)
        if view is None:
            layout = tuple((route.enabled, parts[route.name]) for route in ordered)
            previous = self._views.get(key)
            if previous is not None and previous.layout == layout:
                view = previous.refreshed(ordered, parts, version=version, worker_id=worker_id)
            elif previous is not None:
                view = previous.updated(ordered, layout, parts, self._tuples, version=version, worker_id=worker_id)
            if view is None:
                view = _View.assembled(
                    ordered,
                    layout,
                    parts,
                    self._tuples,
                    version=version,
                    worker_id=worker_id,
                    default_backend=default_backend,
                )
            views[key] = view
        return view.snapshot


@dataclass(frozen=True, slots=True, eq=False)
class BackendModels:
    """One backend's model list in the forms every view joins: built once per list, kept while
    the list is unchanged (compared by identity, so ``eq=False``)."""

    rows: tuple
    ids: tuple[str, ...]
    id_set: frozenset[str]
    # Per model, in ``ids`` order: its catalogue ``created`` and its (capability,).
    created: tuple
    capabilities: tuple[tuple[str], ...]
    # The backend's name as JSON, and every model's /v1/models entry as owned by this backend,
    # comma-separated: the part of the body it contributes when it owns all its models.
    owner: str
    block: bytes

    @classmethod
    def of(cls, name: str, rows: tuple, tuples: dict) -> BackendModels:
        ids = tuple(row[0] for row in rows)
        created = tuple(row[1] or 0 for row in rows)
        capabilities = tuple(tuples.setdefault(said, (said,)) for said in (_capability(row) for row in rows))
        owner = encode_basestring_ascii(name)
        render = partial(_entry, owner=owner, listed_as={})
        block = ",".join(map(render, ids, created, capabilities)).encode("ascii")
        return cls(rows, ids, frozenset(ids), created, capabilities, owner, block)

    def entry(self, index: int) -> bytes:
        entry = _entry(self.ids[index], self.created[index], self.capabilities[index], owner=self.owner, listed_as={})
        return entry.encode("ascii")


def _capability(row: tuple) -> str:
    return row[2] if len(row) > 2 else ""


def _entry(model_id: str, created, capability: tuple[str], *, owner: str, listed_as: dict) -> str:
    """A model's /v1/models entry, byte for byte what ``json.dumps(..., separators=(",", ":"))``
    writes (ASCII, escaped), without building a dict per model. ``listed_as`` caches the JSON
    of each capability list."""
    stamp = str(created) if type(created) is int else json.dumps(created)
    shown_as = listed_as.get(capability)
    if shown_as is None:
        shown_as = listed_as[capability] = json.dumps(listed(capability[0]), separators=(",", ":"))
    return (
        f'{{"id":{encode_basestring_ascii(model_id)},"object":"model","created":{stamp},'
        f'"owned_by":{owner},"capabilities":{shown_as}}}'
    )


@dataclass(frozen=True, slots=True, eq=False)
class _View:
    """A built view and what the next build needs to update it rather than build it again."""

    snapshot: RoutingSnapshot
    # The routes in the view's order, and what its catalogue depends on: each one's enabled
    # flag and model list. Names are in the view's key.
    routes: tuple[BackendRoute, ...]
    layout: tuple
    # Models more than one enabled backend lists: their route tuples are merged.
    multi: frozenset[str]
    # Per route, the /v1/models entries it owns (b"" for none): the body is their join.
    blocks: tuple[bytes, ...]

    @classmethod
    def assembled(
        cls,
        ordered: list[BackendRoute],
        layout: tuple,
        parts: dict[str, BackendModels],
        tuples: dict,
        *,
        version: int,
        worker_id: str,
        default_backend: str,
    ) -> _View:
        seen: set[str] = set()
        multi: set[str] = set()
        for route in ordered:
            if not route.enabled:
                continue
            ids = parts[route.name].id_set
            if not seen.isdisjoint(ids):
                multi |= seen & ids
            seen |= ids
        model_routes: dict[str, tuple[BackendRoute, ...]] = {}
        capabilities: dict[str, tuple[str, ...]] = {}
        created: dict[str, object] = {}
        blocks = [b""] * len(ordered)
        merged: dict[str, list[BackendRoute]] = {model_id: [] for model_id in multi}
        said: dict[str, list[str]] = {model_id: [] for model_id in multi}
        for position, route in enumerate(ordered):
            if not route.enabled:
                continue
            part = parts[route.name]
            if multi.isdisjoint(part.id_set):
                # The common case: the backend alone lists each of its models, so it owns them all.
                model_routes.update(zip(part.ids, repeat((route,))))
                capabilities.update(zip(part.ids, part.capabilities, strict=True))
                created.update(zip(part.ids, part.created, strict=True))
                blocks[position] = part.block
                continue
            alone = (route,)
            entries = []
            for index, model_id in enumerate(part.ids):
                if model_id in multi:
                    merged[model_id].append(route)
                    said[model_id].append(part.capabilities[index][0])
                    if model_id in created:
                        continue  # an earlier (better) backend owns its catalogue entry
                else:
                    model_routes[model_id] = alone
                    capabilities[model_id] = part.capabilities[index]
                created[model_id] = part.created[index]
                entries.append(part.entry(index))
            blocks[position] = b",".join(entries)
        for model_id, listed_by in merged.items():
            model_routes[model_id] = tuple(listed_by)
            key = tuple(said[model_id])
            capabilities[model_id] = tuples.setdefault(key, key)
        disabled: dict[str, list[str]] = {}
        for route in ordered:
            if not route.enabled:
                for model_id in parts[route.name].ids:
                    if model_id not in model_routes:
                        disabled.setdefault(model_id, []).append(route.name)
        snapshot = RoutingSnapshot(
            version=version,
            worker_id=worker_id,
            backends={route.name: route for route in ordered},
            model_routes=model_routes,
            default_backend=default_backend,
            models_body=_body(blocks),
            model_created=created,
            model_capabilities=capabilities,
            disabled_models={model_id: tuple(names) for model_id, names in disabled.items()},
        )
        return cls(snapshot, tuple(ordered), layout, frozenset(multi), tuple(blocks))

    def refreshed(
        self, ordered: list[BackendRoute], parts: dict[str, BackendModels], *, version: int, worker_id: str
    ) -> _View:
        """The same backends in the same order, enabled alike, listing the same models: only
        route objects moved (a probe, a key, a URL). The catalogue is kept; the routes of each
        backend that changed are replaced in a copy of the previous index."""
        previous = self.snapshot
        model_routes = previous.model_routes
        if any(old is not new for old, new in zip(self.routes, ordered, strict=True)):
            model_routes = dict(model_routes)
            self._substitute(model_routes, ordered, parts, skip=())
        snapshot = replace(
            previous,
            version=version,
            worker_id=worker_id,
            backends={route.name: route for route in ordered},
            model_routes=model_routes,
        )
        return _View(snapshot, tuple(ordered), self.layout, self.multi, self.blocks)

    def _substitute(
        self, model_routes: dict, ordered: list[BackendRoute], parts: dict[str, BackendModels], *, skip
    ) -> None:
        """Put each changed route object (at a position not in ``skip``) where its predecessor was."""
        for position, (old, new) in enumerate(zip(self.routes, ordered, strict=True)):
            if old is new or not new.enabled or position in skip:
                continue
            part = parts[new.name]
            shared = part.id_set & self.multi if self.multi else ()
            if not shared:
                model_routes.update(zip(part.ids, repeat((new,))))
                continue
            model_routes.update(zip(part.id_set - shared, repeat((new,))))
            for model_id in shared:
                model_routes[model_id] = tuple(new if route is old else route for route in model_routes[model_id])

    def updated(
        self,
        ordered: list[BackendRoute],
        layout: tuple,
        parts: dict[str, BackendModels],
        tuples: dict,
        *,
        version: int,
        worker_id: str,
    ) -> _View | None:
        """The same backends in the same order, a few of which now list other models or were
        enabled or disabled (discovery, an operator): only the models those list, before or now,
        are indexed again, and only the /v1/models entries of backends whose share of the
        catalogue moved are rendered again. None when so much moved that building it whole is
        cheaper."""
        moved = [p for p, (was, now) in enumerate(zip(self.layout, layout, strict=True)) if was != now]
        previous = self.snapshot
        affected: set[str] = set()
        for position in moved:
            affected |= self.layout[position][1].id_set | layout[position][1].id_set
        share = UPDATE_AT_MOST
        if len(moved) * share > len(ordered) or len(affected) * share > len(previous.model_routes):
            return None
        skip = frozenset(moved)
        model_routes = dict(previous.model_routes)
        self._substitute(model_routes, ordered, parts, skip=skip)
        capabilities = dict(previous.model_capabilities)
        created = dict(previous.model_created)
        disabled = dict(previous.disabled_models)
        multi = set(self.multi)
        blocks = list(self.blocks)
        position_of = {route.name: position for position, route in enumerate(ordered)}
        off = [position for position, (enabled, _) in enumerate(layout) if not enabled]
        indexes: dict[int, dict[str, int]] = {}

        def index_in(position: int) -> dict[str, int]:
            index = indexes.get(position)
            if index is None:
                index = indexes[position] = {model_id: k for k, model_id in enumerate(layout[position][1].ids)}
            return index

        rerender = set(moved)
        for model_id in affected:
            before = previous.model_routes.get(model_id, ())
            said_before = dict(
                zip((r.name for r in before), previous.model_capabilities.get(model_id, ()), strict=True)
            )
            listers = [position_of[r.name] for r in before if position_of[r.name] not in skip]
            listers += [p for p in moved if layout[p][0] and model_id in layout[p][1].id_set]
            listers.sort()
            owner_before = position_of[before[0].name] if before else None
            owner = listers[0] if listers else None
            if owner != owner_before:
                rerender.update(p for p in (owner, owner_before) if p is not None)
            multi.discard(model_id)
            disabled.pop(model_id, None)
            if not listers:
                for index in (model_routes, capabilities, created):
                    index.pop(model_id, None)
                # Unavailable rather than unknown while a disabled backend lists it.
                names = tuple(ordered[p].name for p in off if model_id in layout[p][1].id_set)
                if names:
                    disabled[model_id] = names
                continue
            model_routes[model_id] = tuple(ordered[p] for p in listers)
            said = tuple(
                said_before[ordered[p].name] if p not in skip else layout[p][1].capabilities[index_in(p)[model_id]][0]
                for p in listers
            )
            capabilities[model_id] = tuples.setdefault(said, said)
            created[model_id] = layout[owner][1].created[index_in(owner)[model_id]]
            if len(listers) > 1:
                multi.add(model_id)
        for position in rerender:
            blocks[position] = _owned_block(layout[position], ordered[position], model_routes)
        snapshot = replace(
            previous,
            version=version,
            worker_id=worker_id,
            backends={route.name: route for route in ordered},
            model_routes=model_routes,
            models_body=_body(blocks),
            model_created=created,
            model_capabilities=capabilities,
            disabled_models=disabled,
        )
        return _View(snapshot, tuple(ordered), layout, frozenset(multi), tuple(blocks))


def _owned_block(placed: tuple[bool, BackendModels], route: BackendRoute, model_routes: dict) -> bytes:
    """The /v1/models entries of the models ``route`` comes first for (b"" when disabled)."""
    enabled, part = placed
    if not enabled:
        return b""
    owned = [k for k, model_id in enumerate(part.ids) if model_routes[model_id][0] is route]
    return part.block if len(owned) == len(part.ids) else b",".join(map(part.entry, owned))


def _body(blocks) -> bytes:
    return b'{"object":"list","data":[' + b",".join(block for block in blocks if block) + b"]}"
