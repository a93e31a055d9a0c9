"""The protocol's payloads, hashes, checks and addresses: plain data, no IO."""

import pytest

from eldric_cloud.controller.protocol import (
    MAX_MODELS,
    SECRET_HEADER,
    SystemFigures,
    WorkerSnapshot,
    advertised_address,
    heartbeat_payload,
    models_hash,
    payload_problem,
    secret_headers,
    worker_path,
)
from tests.controller.helpers import StaticSource


def snapshot(**changes) -> WorkerSnapshot:
    source = StaticSource()
    values = {
        "worker_id": source.worker_id(),
        "version": "0.1.0",
        "instance": "eu-1",
        "url": "http://gw1:8889",
        "host": "gw1",
        "port": 8889,
        "uptime_seconds": 42,
        "status": "degraded",
        "active_connections": 5,
        "requests_in_flight": 2,
        "last_minute": source.last_minute(),
        "system": SystemFigures(cpu_percent=12.5, memory_percent=40.0, process_cpu_percent=3.0, process_rss_bytes=1024),
        "backends": source.backends(),
        "models": source.models(),
        "license_tier": "standard",
    }
    values.update(changes)
    return WorkerSnapshot(**values)


def test_a_registration_carries_everything_the_heartbeat_reports():
    body = heartbeat_payload(snapshot(), include_models=True, sent_at="2026-12-01T16:00:00Z")

    assert body["protocol_version"] == 1
    assert body["worker_type"] == "cloud"
    assert body["worker_id"] == "cld-1234abcd"
    assert (body["version"], body["instance"], body["url"], body["host"], body["port"]) == (
        "0.1.0",
        "eu-1",
        "http://gw1:8889",
        "gw1",
        8889,
    )
    assert body["uptime_seconds"] == 42
    assert body["status"] == "degraded"
    load = body["load"]
    assert load["active_connections"] == 5
    assert load["requests_in_flight"] == 2
    assert load["last_minute"] == {"requests": 10, "errors": 1, "p50_latency_ms": 250.0}
    assert (load["cpu_percent"], load["memory_percent"]) == (12.5, 40.0)
    assert load["gpu_percent"] is None
    assert body["backends_summary"] == {"total": 2, "healthy": 1, "unhealthy": 1}
    assert body["backends"][0] == {
        "name": "xai",
        "kind": "openai_compatible",
        "state": "healthy",
        "models": 2,
        "latency_ms": 12.5,
        "priority": 1,
    }
    assert body["models"] == ["grok-2", "grok-3", "llama-3.1-8b"]
    assert body["models_count"] == 3
    assert body["models_hash"] == models_hash(["grok-3", "grok-2", "llama-3.1-8b"])
    assert body["license"] == {"tier": "standard"}
    assert payload_problem(body, path_worker_id="cld-1234abcd") is None


def test_a_heartbeat_with_an_unchanged_list_sends_only_its_hash():
    full = heartbeat_payload(snapshot(), include_models=True, sent_at="t")
    short = heartbeat_payload(snapshot(), include_models=False, sent_at="t")

    assert "models" not in short
    assert short["models_hash"] == full["models_hash"]
    assert short["models_count"] == 3
    assert payload_problem(short, path_worker_id="cld-1234abcd") is None


def test_the_summary_counts_backends_as_health_does():
    from eldric_cloud.controller.protocol import BackendStatus

    backends = [
        BackendStatus(name="a", kind="k", state="healthy"),
        BackendStatus(name="b", kind="k", state="disabled"),  # not counted at all
        BackendStatus(name="c", kind="k", state="unknown"),  # not probed yet, routed to
        BackendStatus(name="d", kind="k", state="rate_limited"),
    ]
    body = heartbeat_payload(snapshot(backends=backends), include_models=False, sent_at="t")

    assert body["backends_summary"] == {"total": 3, "healthy": 2, "unhealthy": 1}


def test_the_hash_ignores_order_and_duplicates_and_moves_with_the_list():
    assert models_hash(["b", "a"]) == models_hash(["a", "b", "a"])
    assert models_hash(["a"]) != models_hash(["a", "b"])
    assert models_hash([]).startswith("sha256:")


def test_a_huge_list_is_cut_but_its_hash_covers_all_of_it():
    models = [f"m-{i:05d}" for i in range(MAX_MODELS + 5)]
    body = heartbeat_payload(snapshot(models=models), include_models=True, sent_at="t")

    assert len(body["models"]) == MAX_MODELS
    assert body["models_truncated"] is True
    assert body["models_count"] == MAX_MODELS + 5
    assert body["models_hash"] == models_hash(models)


def test_the_secret_header_is_sent_only_when_a_secret_is_set():
    assert secret_headers("") == {}
    assert secret_headers("s3cret") == {SECRET_HEADER: "s3cret"}
    assert SECRET_HEADER == "X-Eldric-Cluster-Secret"


def test_worker_paths_are_configurable():
    assert worker_path("/api/v1/workers", "cld-1") == "/api/v1/workers/cld-1"
    assert worker_path("/eldric/workers/", "cld-1") == "/eldric/workers/cld-1"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"protocol_version": 2}, "protocol_version"),
        ({"worker_id": "nope"}, "worker_id"),
        ({"worker_id": "cld-99999999"}, "worker_id"),  # not the id in the path
        ({"worker_type": ""}, "worker_type"),
        ({"port": 0}, "port"),
        ({"port": True}, "port"),
        ({"url": None}, "url"),
        ({"models_hash": "md5:x"}, "models_hash"),
        ({"models": ["a", 1]}, "models"),
        ({"load": []}, "load"),
        ({"backends": {}}, "backends"),
    ],
)
def test_malformed_registrations_are_named_by_their_field(change, param):
    body = heartbeat_payload(snapshot(), include_models=True, sent_at="t")
    body.update(change)

    problem = payload_problem(body, path_worker_id="cld-1234abcd")

    assert problem is not None
    assert problem[0] == param


def test_non_objects_are_refused():
    assert payload_problem([1, 2], path_worker_id="cld-1234abcd") == ("", "The body must be a JSON object.")


def test_the_advertised_address_replaces_a_wildcard_with_the_host_name():
    assert advertised_address(bind_host="0.0.0.0", port=8889, hostname="gw1").url == "http://gw1:8889"
    assert advertised_address(bind_host="::", port=8889, hostname="gw1").host == "gw1"
    assert advertised_address(bind_host="10.0.0.7", port=9000).url == "http://10.0.0.7:9000"
    assert advertised_address(bind_host="::1", port=9000).url == "http://[::1]:9000"


def test_an_advertise_url_wins():
    address = advertised_address(bind_host="0.0.0.0", port=8889, advertise_url="https://gw.example.com/")

    assert (address.url, address.host, address.port) == ("https://gw.example.com", "gw.example.com", 443)
    with pytest.raises(ValueError, match="ELDRIC_ADVERTISE_URL"):
        advertised_address(bind_host="0.0.0.0", port=8889, advertise_url="gw:8889")
