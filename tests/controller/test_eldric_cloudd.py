"""The real ``eldric-cloudd`` and the real ``eldric-controller-stub``, as an operator runs them:
it registers, heartbeats with its live figures, shows the state in ``/health``, and
deregisters when it drains. Under both servers."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.cli_process import GatewayProcess
from tests.controller.stub_process import stub_controller_start

SECRET = "cluster-secret-for-tests"


@pytest.fixture
def controller():
    stub = stub_controller_start(secret=SECRET)
    try:
        with stub.client() as http:
            yield http, stub.url
    finally:
        stub.stop()


def workers(http: httpx.Client) -> list[dict]:
    return http.get("/api/v1/workers").json()["data"]


def eventually(check, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_an_instance_registers_heartbeats_and_deregisters(controller, server):
    http, url = controller
    gateway = GatewayProcess(
        "--controller",
        url,
        server=server,
        env={"ELDRIC_CLUSTER_SECRET": SECRET, "ELDRIC_HEARTBEAT_SECONDS": "0.5"},
    ).start()
    try:
        (worker,) = eventually(lambda: workers(http), "a registration")
        assert worker["worker_id"].startswith("cld-") and worker["status"] == "online"
        assert worker["url"].endswith(f":{gateway.port}")
        health = gateway.get("/health").json()
        assert health["worker_id"] == worker["worker_id"]
        controller_state = eventually(
            lambda: (state := gateway.get("/health").json()["controller"])["heartbeats"] > 0 and state,
            "a heartbeat acknowledged",
        )
        assert controller_state["state"] == "registered" and controller_state["consecutive_failures"] == 0
        assert SECRET not in gateway.get("/health").text
    finally:
        assert gateway.stop() == 0
    assert workers(http) == [] or all(w["status"] != "online" for w in workers(http))
    assert SECRET not in gateway.logs()
