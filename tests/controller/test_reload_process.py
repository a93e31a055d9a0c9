"""A config reload moves the real ``eldric-cloudd``'s registration between real
``eldric-controller-stub`` processes: SIGHUP or a file change, no restart."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli_process import GatewayProcess, write_config_unnoticed
from tests.controller.stub_process import StubController, stub_controller_start
from tests.controller.test_eldric_cloudd import eventually, workers

# An hour between heartbeats: a registration seen within the tests' deadlines is the one a
# move sends at once, never the next scheduled beat.
SLOW_BEATS = {"ELDRIC_HEARTBEAT_SECONDS": "3600"}


@pytest.fixture
def controllers():
    """``controllers()`` starts a stub and returns (client for its API, its URL)."""
    started: list[StubController] = []

    def start() -> tuple[httpx.Client, str]:
        stub = stub_controller_start()
        started.append(stub)
        return stub.client(), stub.url

    yield start
    for stub in started:
        stub.stop()


@pytest.fixture
def daemons(tmp_path):
    started: list[GatewayProcess] = []

    def start(**kwargs) -> GatewayProcess:
        daemon = GatewayProcess(data_dir=tmp_path / "data", **kwargs).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def status_in(http: httpx.Client, worker_id: str) -> str | None:
    return next((w["status"] for w in workers(http) if w["worker_id"] == worker_id), None)


def controller_health(daemon: GatewayProcess) -> dict:
    return daemon.get("/health").json()["controller"]


def test_sighup_moves_the_registration_to_the_controller_the_file_now_names(tmp_path, controllers, daemons):
    (http_a, url_a), (http_b, url_b) = controllers(), controllers()
    config = tmp_path / "eldric.json"
    config.write_text(json.dumps({"controller_url": url_a, "backends": []}).ljust(600))
    daemon = daemons(config=config, env=SLOW_BEATS)
    worker_id = daemon.get("/health").json()["worker_id"]
    assert worker_id.startswith("cld-")
    eventually(lambda: status_in(http_a, worker_id) == "online", "registration with A")

    # when: the file names B (with credentials, which must never be shown), then SIGHUP
    mark = len(daemon.logs())
    with_credentials = url_b.replace("http://", "http://ops:pa55word@")
    write_config_unnoticed(config, {"controller_url": with_credentials, "backends": []})
    daemon.sighup()

    # then: B lists the worker at once, A lists it deregistered, /health names B
    eventually(lambda: status_in(http_b, worker_id) == "online", "registration with B", timeout=10)
    assert status_in(http_a, worker_id) == "deregistered"
    health = eventually(lambda: (h := controller_health(daemon))["registered"] and h, "B in /health")
    assert health["url"] == url_b
    assert health["worker_id"] == worker_id
    line = daemon.wait_for_log("controller: http", after=mark)
    assert line.endswith(f"controller: {url_a} -> {url_b} (config reload)")
    assert "config reload (SIGHUP)" in daemon.logs()[mark:]

    # when: the file names no controller any more
    write_config_unnoticed(config, {"backends": []})
    daemon.sighup()
    # then: the worker leaves B and /health says the client is off
    eventually(lambda: status_in(http_b, worker_id) == "deregistered", "deregistration from B")
    assert controller_health(daemon) == {"configured": False, "state": "disabled"}
    assert "pa55word" not in daemon.logs()
    assert "Traceback" not in daemon.logs()
    assert daemon.process.poll() is None


def test_a_controller_added_to_the_file_of_an_instance_started_without_one_registers_it(tmp_path, controllers, daemons):
    http, url = controllers()
    config = tmp_path / "eldric.json"
    config.write_text(json.dumps({"backends": []}))
    daemon = daemons(config=config, server="uvicorn", env=SLOW_BEATS)
    worker_id = daemon.get("/health").json()["worker_id"]
    assert controller_health(daemon)["state"] == "disabled"

    # when: the file gains a controller (the watcher notices; no signal)
    config.write_text(json.dumps({"controller_url": url, "backends": []}))

    # then: the instance registers there and says so in /health
    eventually(lambda: status_in(http, worker_id) == "online", "registration")
    health = eventually(lambda: (h := controller_health(daemon))["registered"] and h, "the controller in /health")
    assert health["url"] == url
    assert f"controller: none -> {url} (config reload)" in daemon.logs()
