"""The refresher's rebuild keeps what did not change since its last build (issue 14's big
catalogue). Whatever changed, routing and ``/v1/models`` must then answer exactly as a build
from nothing would."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from backends.models import Backend
from backends.probe import ProbeResult
from backends.providers.base import ModelInfo
from backends.selectors import routing_snapshot_build
from backends.services import (
    backend_create,
    backend_delete,
    backend_health_record,
    backend_models_sync,
    backend_update,
)
from backends.snapshot import BackendRoute, SnapshotAssembler, snapshot_assemble
from gateway.breaker import BreakerBoard
from gateway.routing import plan
from gateway.snapshot import SnapshotSource


def answers(snapshot, organisation: str = "") -> dict:
    """What a client of ``organisation`` can observe: where each model goes, in which order,
    each backend's state, the /v1/models listing and what is unavailable."""
    view = snapshot.for_org(organisation)
    return {
        "routes": {model: [r.name for r in routes] for model, routes in view.model_routes.items()},
        "backends": {name: (r.enabled, r.health, r.healthy_probes, r.priority) for name, r in view.backends.items()},
        "listing": json.loads(view.models_body)["data"],
        "created": view.model_created,
        "capabilities": view.model_capabilities,
        "disabled": view.disabled_models,
        "default": view.default_backend,
    }


def backend(name: str, priority: int, models: list[ModelInfo]) -> Backend:
    created = backend_create(
        name=name, kind="openai_compatible", url="http://127.0.0.1:9/v1", priority=priority, actor="test"
    )
    backend_models_sync(backend=created, models=models)
    return created


def get(name: str) -> Backend:
    return Backend.objects.get(name=name)


@pytest.fixture
def refresher(db):
    # Never started: each ``refresh`` is one rebuild, on this thread, with the kept state.
    return SnapshotSource()


def test_after_each_kind_of_change_the_kept_state_rebuild_answers_as_a_fresh_build(refresher):
    backend("a", 1, [ModelInfo("shared", 1), ModelInfo("only-a", 2)])
    backend("b", 2, [ModelInfo("shared", 3), ModelInfo("text-embedding-b", 4, "embedding")])
    refresher.refresh()
    steps = [
        ("a successful probe", lambda: backend_health_record(backend=get("a"), result=ProbeResult("healthy", 3.0))),
        ("a failed probe", lambda: backend_health_record(backend=get("a"), result=ProbeResult("unhealthy", None))),
        (
            "discovery",
            lambda: backend_models_sync(backend=get("b"), models=[ModelInfo("shared", 3), ModelInfo("new", 5)]),
        ),
        (
            "a reclassified model",
            lambda: backend_models_sync(
                backend=get("b"), models=[ModelInfo("shared", 3, "embedding"), ModelInfo("new", 5)]
            ),
        ),
        ("priorities swapped", lambda: backend_update(backend=get("a"), priority=9, actor="test")),
        ("a backend disabled", lambda: backend_update(backend=get("b"), enabled=False, actor="test")),
        ("a backend added", lambda: backend("c", 5, [ModelInfo("shared", 7), ModelInfo("only-c", 8)])),
        ("a backend re-enabled", lambda: backend_update(backend=get("b"), enabled=True, actor="test")),
        ("a backend removed", lambda: backend_delete(backend=get("a"))),
    ]
    for what, change in steps:
        change()
        assert refresher.refresh(), what
        assert answers(refresher.current) == answers(routing_snapshot_build()), what

    # And the answers are the ones the changes call for.
    current = refresher.current.for_org("")
    assert [r.name for r in current.model_routes["shared"]] == ["b", "c"]
    assert "only-a" not in current.model_routes and "only-c" in current.model_routes
    listing = {m["id"]: m for m in json.loads(current.models_body)["data"]}
    assert listing["shared"]["owned_by"] == "b" and listing["shared"]["capabilities"] == ["embedding"]


def test_a_probe_moves_routing_at_once_on_a_kept_state_rebuild(refresher):
    backend("first", 1, [ModelInfo("m", 1)])
    backend("second", 2, [ModelInfo("m", 1)])
    refresher.refresh()
    board = BreakerBoard(failure_threshold=3, cooldown=30.0)
    assert plan(refresher.current, "m", board).candidates[0].name == "first"

    backend_health_record(backend=get("first"), result=ProbeResult("auth_failed", None, 401, "key rejected"))
    refresher.refresh()

    assert [r.name for r in plan(refresher.current, "m", board).candidates] == ["second"]
    backend_health_record(backend=get("first"), result=ProbeResult("healthy", 2.0))
    refresher.refresh()
    assert plan(refresher.current, "m", board).candidates[0].name == "first"


def _route(name: str, priority: int) -> BackendRoute:
    return BackendRoute(
        name=name, kind="openai_compatible", url=f"http://{name}.test/v1", api_key="k", priority=priority
    )


def test_the_models_listing_is_the_json_a_client_parses_byte_for_byte():
    # Ids a backend may list: non-ASCII, a quote, a backslash; escaped as json.dumps does.
    odd = ["mödel-ü", 'quote"d', "back\\slash", "plain"]
    snapshot = snapshot_assemble(
        version=1,
        worker_id="cld-t",
        routes=[_route("low", 5), _route("high", 1)],
        models={"low": [(m, 10, "") for m in odd], "high": [("plain", 20, "embedding")]},
        default_backend="",
    )

    expected = [{"id": "plain", "object": "model", "created": 20, "owned_by": "high", "capabilities": ["embedding"]}]
    expected += [
        {"id": m, "object": "model", "created": 10, "owned_by": "low", "capabilities": ["chat"]} for m in odd[:3]
    ]
    assert snapshot.models_body == json.dumps({"object": "list", "data": expected}, separators=(",", ":")).encode()


def test_a_big_catalogue_updated_in_place_answers_as_one_built_from_nothing():
    # 40 backends of 30 models, a third of each shared with its neighbour: few enough moved
    # at each step that the view is updated in place rather than built again.
    routes = [_route(f"b{i:02d}", priority=i % 7) for i in range(40)]
    models = {
        route.name: [(f"m{i * 20 + j}", i * 100 + j, "embedding" if j % 9 == 0 else "") for j in range(30)]
        for i, route in enumerate(routes)
    }
    assembler = SnapshotAssembler()

    def build(version: int):
        arguments = {
            "version": version,
            "worker_id": "cld-t",
            "routes": list(routes),
            "models": dict(models),
            "default_backend": "b00",
            "organisations": {"tenant": True},
            "priority_routing": {"default": False},
        }
        return assembler.assemble(**arguments), snapshot_assemble(**arguments)

    build(1)
    changes = [
        ("a backend disabled", lambda: routes.__setitem__(3, replace(routes[3], enabled=False))),
        ("its neighbour lists other models", lambda: models.__setitem__("b04", [("m70", 5, ""), ("new", 6, "chat")])),
        ("a model only a disabled backend lists", lambda: models.__setitem__("b03", [("only-off", 1, "")])),
        ("a backend lists nothing", lambda: models.__setitem__("b10", [])),
        ("a probe", lambda: routes.__setitem__(5, replace(routes[5], health="unhealthy", healthy_probes=3))),
        ("the backend enabled again", lambda: routes.__setitem__(3, replace(routes[3], enabled=True))),
        ("a model reclassified", lambda: models.__setitem__("b20", [(m, c, "rerank") for m, c, _ in models["b20"]])),
    ]
    for version, (what, change) in enumerate(changes, start=2):
        change()
        kept, fresh = build(version)
        for organisation in ("", "tenant"):
            assert answers(kept, organisation) == answers(fresh, organisation), what
    listing = {m["id"]: m for m in json.loads(kept.for_org("").models_body)["data"]}
    assert listing["new"]["owned_by"] == "b04" and listing["only-off"]["owned_by"] == "b03"
    assert listing["m410"]["capabilities"] == ["rerank"] and "m90" not in listing  # b04 dropped it
    assert [r.name for r in kept.for_org("").model_routes["m70"]] == ["b04"]
    assert [r.name for r in kept.for_org("").model_routes["m405"]] == ["b19", "b20"]  # configuration order


def test_a_rotated_key_is_used_at_once_and_the_old_one_is_no_longer_held(db):
    assembler = SnapshotAssembler()
    created = backend("keyed", 1, [ModelInfo("m", 1)])
    backend_update(backend=created, actor="test", api_key="sk-old-key-0000000000")
    assert routing_snapshot_build(assembler=assembler).backends["keyed"].api_key == "sk-old-key-0000000000"

    backend_update(backend=get("keyed"), actor="test", api_key="sk-new-key-1111111111")
    rebuilt = routing_snapshot_build(assembler=assembler)

    assert rebuilt.backends["keyed"].api_key == "sk-new-key-1111111111"
    # The kept state decrypts each key once, and forgets a key no backend uses any more.
    assert set(assembler.decrypted.values()) == {"sk-new-key-1111111111"}
