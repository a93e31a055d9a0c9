"""The reference controller's registry: upserts, 404/409, offline marking (clock passed in)."""

from eldric_cloud.controller.protocol import MODELS_UNKNOWN, WORKER_NOT_FOUND, models_hash
from eldric_cloud.controller.registry import DEREGISTERED, OFFLINE, ONLINE, WorkerRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def registration(worker_id="cld-aaaa1111", models=("a", "b"), *, with_models=True) -> dict:
    body = {
        "protocol_version": 1,
        "worker_id": worker_id,
        "worker_type": "cloud",
        "url": "http://gw:8889",
        "port": 8889,
        "models_hash": models_hash(models),
    }
    if with_models:
        body["models"] = list(models)
    return body


def registry(clock: Clock, **kwargs) -> WorkerRegistry:
    return WorkerRegistry(offline_after=90.0, clock=clock, wall_clock=lambda: 1_764_000_000.0, **kwargs)


def test_registration_and_heartbeat_are_the_same_upsert():
    clock = Clock()
    workers = registry(clock)

    assert workers.upsert("cld-aaaa1111", registration())[0] == 201
    clock.now += 30
    status, body = workers.upsert("cld-aaaa1111", registration(with_models=False))

    assert status == 200
    assert body["models_hash"] == models_hash(["a", "b"])
    worker = workers.get("cld-aaaa1111")
    assert worker["status"] == ONLINE
    assert worker["models"] == ["a", "b"]  # kept from the registration
    assert (worker["heartbeats"], worker["registrations"]) == (2, 1)


def test_a_hash_only_heartbeat_from_a_stranger_is_404():
    status, body = registry(Clock()).upsert("cld-aaaa1111", registration(with_models=False))

    assert status == 404
    assert body["error"]["code"] == WORKER_NOT_FOUND


def test_a_hash_without_its_list_is_409():
    workers = registry(Clock())
    workers.upsert("cld-aaaa1111", registration())

    status, body = workers.upsert("cld-aaaa1111", registration(models=("a", "b", "c"), with_models=False))

    assert status == 409
    assert body["error"]["code"] == MODELS_UNKNOWN


def test_a_silent_worker_goes_offline_after_the_timeout_and_back_with_a_beat():
    clock = Clock()
    workers = registry(clock)
    workers.upsert("cld-aaaa1111", registration())

    clock.now += 90
    assert workers.get("cld-aaaa1111")["status"] == ONLINE
    clock.now += 1
    assert workers.get("cld-aaaa1111")["status"] == OFFLINE
    assert workers.newly_offline() == ["cld-aaaa1111"]
    assert workers.newly_offline() == []  # reported once
    assert [w["worker_id"] for w in workers.listing(OFFLINE)] == ["cld-aaaa1111"]

    workers.upsert("cld-aaaa1111", registration(with_models=False))
    assert workers.get("cld-aaaa1111")["status"] == ONLINE


def test_a_deregistered_worker_must_register_in_full_again():
    workers = registry(Clock())
    workers.upsert("cld-aaaa1111", registration())

    assert workers.deregister("cld-aaaa1111")
    assert not workers.deregister("cld-aaaa1111")
    assert workers.get("cld-aaaa1111")["status"] == DEREGISTERED
    assert workers.upsert("cld-aaaa1111", registration(with_models=False))[0] == 404
    assert workers.upsert("cld-aaaa1111", registration())[0] == 200
    assert workers.get("cld-aaaa1111")["status"] == ONLINE


def test_a_full_registry_makes_room_only_by_forgetting_silent_workers():
    clock = Clock()
    workers = registry(clock, max_workers=2)
    workers.upsert("cld-aaaa1111", registration("cld-aaaa1111"))
    workers.upsert("cld-bbbb2222", registration("cld-bbbb2222"))

    assert workers.upsert("cld-cccc3333", registration("cld-cccc3333"))[0] == 503
    clock.now += 60
    workers.upsert("cld-bbbb2222", registration("cld-bbbb2222", with_models=False))
    clock.now += 40  # aaaa silent for 100 s: offline
    assert workers.upsert("cld-cccc3333", registration("cld-cccc3333"))[0] == 201
    assert sorted(w["worker_id"] for w in workers.listing()) == ["cld-bbbb2222", "cld-cccc3333"]
