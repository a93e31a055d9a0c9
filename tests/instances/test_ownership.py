"""Several instances on one database: whose static backends, settings and routes are whose."""

from datetime import timedelta

import pytest

from backends.models import AuditLog, Backend, GatewaySettings, WorkerIdentity
from backends.providers.base import ModelInfo
from backends.selectors import health_interval_for, routing_snapshot_build
from backends.services import (
    StaticNameConflict,
    backend_create,
    backend_models_sync,
    backends_static_apply,
    instance_settings_update,
)
from backends.specs import BackendSpec

pytestmark = pytest.mark.django_db


def spec(name: str, port: int = 9001, **extra) -> BackendSpec:
    return BackendSpec(name=name, url=f"http://127.0.0.1:{port}/v1", **extra)


def owners() -> dict[str, list[str]]:
    return dict(Backend.objects.values_list("name", "instances"))


def test_an_instance_applying_its_config_keeps_the_other_instances_backends():
    backends_static_apply(specs=[spec("a")], instance="one")

    diff = backends_static_apply(specs=[spec("b", 9002)], instance="two")

    assert (diff.added, diff.removed) == (["b"], [])
    assert owners() == {"a": ["one"], "b": ["two"]}


def test_dropping_a_backend_from_the_config_removes_only_this_instances_own():
    backends_static_apply(specs=[spec("a"), spec("gone", 9003)], instance="one")
    backends_static_apply(specs=[spec("b", 9002)], instance="two")

    diff = backends_static_apply(specs=[spec("a")], instance="one")

    assert diff.removed == ["gone"]
    assert owners() == {"a": ["one"], "b": ["two"]}
    assert AuditLog.objects.filter(backend_name="gone", action="delete").exists()


def test_the_same_name_url_and_type_is_shared_and_removed_with_its_last_owner():
    backends_static_apply(specs=[spec("shared")], instance="one")
    backends_static_apply(specs=[spec("shared")], instance="two")
    assert owners() == {"shared": ["one", "two"]}

    diff = backends_static_apply(specs=[], instance="one")
    assert diff.removed == ["shared"]
    assert owners() == {"shared": ["two"]}

    backends_static_apply(specs=[], instance="two")
    assert owners() == {}


def test_the_same_name_with_another_url_stops_the_second_instance_and_changes_nothing():
    backends_static_apply(specs=[spec("a", 9001)], instance="one")

    with pytest.raises(StaticNameConflict) as caught:
        backends_static_apply(specs=[spec("fresh", 9005), spec("a", 9009)], instance="two")

    message = str(caught.value)
    assert "'a'" in message and "one" in message and "two" in message
    assert "http://127.0.0.1:9001/v1" in message and "http://127.0.0.1:9009/v1" in message
    assert owners() == {"a": ["one"]}  # "fresh" was not added either


def test_the_same_name_with_another_type_is_a_conflict_too():
    backends_static_apply(specs=[spec("a")], instance="one")

    with pytest.raises(StaticNameConflict):
        backends_static_apply(specs=[spec("a", kind="ollama")], instance="two")


def test_an_instance_may_change_the_url_of_a_backend_only_it_declares():
    backends_static_apply(specs=[spec("a", 9001)], instance="one")

    diff = backends_static_apply(specs=[spec("a", 9002)], instance="one")

    assert diff.changed == ["a"]
    assert Backend.objects.get(name="a").url == "http://127.0.0.1:9002/v1"


def test_a_runtime_backends_name_is_never_taken_over_by_a_config():
    backend_create(name="rt", kind="openai_compatible", url="http://127.0.0.1:9001/v1", enabled=False, actor="ops")

    with pytest.raises(StaticNameConflict, match="added at runtime"):
        backends_static_apply(specs=[spec("rt")], instance="one")

    assert Backend.objects.get(name="rt").source == "api"


def test_each_instance_keeps_its_own_settings():
    backends_static_apply(specs=[spec("a")], instance="one")
    backends_static_apply(specs=[spec("b", 9002)], instance="two")
    instance_settings_update(instance="one", default_backend="a", health_interval_ms=5_000, controller_url="")
    instance_settings_update(
        instance="two", default_backend="b", health_interval_ms=20_000, controller_url="http://ctl:8880"
    )

    rows = {r.instance: r for r in WorkerIdentity.objects.all()}
    assert (rows["one"].default_backend, rows["one"].health_interval_ms) == ("a", 5_000)
    assert (rows["two"].default_backend, rows["two"].controller_url) == ("b", "http://ctl:8880")
    assert rows["one"].worker_id.startswith("cld-") and rows["one"].worker_id != rows["two"].worker_id
    # Only installation-wide state is left on the single row.
    assert not hasattr(GatewaySettings, "default_backend")


def with_models(name: str, *ids: str) -> None:
    backend_models_sync(backend=Backend.objects.get(name=name), models=[ModelInfo(id=i) for i in ids])


def test_each_instance_routes_to_its_own_static_backends_and_default():
    backends_static_apply(specs=[spec("a")], instance="one")
    backends_static_apply(specs=[spec("b", 9002)], instance="two")
    instance_settings_update(instance="one", default_backend="a")
    instance_settings_update(instance="two", default_backend="b")
    with_models("a", "model-a")
    with_models("b", "model-b")

    one, two = routing_snapshot_build(instance="one"), routing_snapshot_build(instance="two")

    assert set(one.backends) == {"a"} and set(one.model_routes) == {"model-a"}
    assert set(two.backends) == {"b"} and set(two.model_routes) == {"model-b"}
    assert (one.default_backend, two.default_backend) == ("a", "b")
    assert one.worker_id != two.worker_id
    # The per-organisation views (organisation ownership) are built from the same routes.
    assert set(one.for_org("").backends) == {"a"}


def test_another_instances_backend_is_never_this_ones_default():
    backends_static_apply(specs=[spec("a")], instance="one")
    backends_static_apply(specs=[spec("b", 9002)], instance="two")
    instance_settings_update(instance="one", default_backend="b")

    assert routing_snapshot_build(instance="one").default_backend == ""


def test_runtime_backends_route_everywhere_unless_pinned():
    for name, instances in (("everywhere", []), ("only-one", ["one"])):
        backend_create(
            name=name, kind="openai_compatible", url="http://127.0.0.1:9/v1", instances=instances, actor="ops"
        )
        with_models(name, f"model-{name}")

    one, two = routing_snapshot_build(instance="one"), routing_snapshot_build(instance="two")

    assert set(one.model_routes) == {"model-everywhere", "model-only-one"}
    assert set(two.model_routes) == {"model-everywhere"}
    assert b"model-only-one" not in two.models_body


def test_a_backend_is_probed_as_often_as_the_most_demanding_instance_routing_to_it():
    intervals = {"one": 5_000, "two": 30_000}

    assert health_interval_for(["two"], intervals=intervals) == timedelta(seconds=30)
    assert health_interval_for(["one", "two"], intervals=intervals) == timedelta(seconds=5)
    assert health_interval_for([], intervals=intervals) == timedelta(seconds=5)  # every instance
    assert health_interval_for(["unknown"], intervals=intervals) == timedelta(seconds=60)
