"""Each instance's own report at its heartbeat (uptime, load, its controller client's state),
in a real eldric-cloudd talking to the real ``eldric-controller-stub``: shown by the
management API, the dashboard's state and the admin, also when the controller goes away."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from tests.api.conftest import ADMIN_TOKEN
from tests.cli_process import GatewayProcess
from tests.controller.stub_process import stub_controller_start
from tests.controller.test_eldric_cloudd import SECRET, eventually, workers
from tests.dashboard.test_process import create_superuser, log_in
from tests.fakes.server import openai_models
from tests.traffic.upstream import chat_upstream

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def controller():
    """The stub controller as a process this test can stop."""
    stub = stub_controller_start(secret=SECRET)
    try:
        with stub.client() as http:
            yield stub.process, http, stub.url
    finally:
        stub.stop()


def instance(gateway: GatewayProcess) -> dict:
    answer = gateway.get("/api/v1/instances/default", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_an_instance_reports_its_uptime_load_and_controller_state_everywhere(
    controller,
    fake_provider,
    data_dir,
    server,
):
    stub, http, url = controller
    upstream = fake_provider("alpha")
    upstream.on("GET", "/v1/models", openai_models("gpt-4o")).on("POST", "/v1/chat/completions", chat_upstream("a"))
    directory = data_dir()
    create_superuser(directory)
    gateway = GatewayProcess(
        "--controller",
        url,
        "--backends",
        f"alpha:{upstream.url}/v1",
        server=server,
        data_dir=directory,
        env={
            "ELDRIC_ADMIN_TOKEN": ADMIN_TOKEN,
            "ELDRIC_CLUSTER_SECRET": SECRET,
            "ELDRIC_HEARTBEAT_SECONDS": "0.5",
            "ELDRIC_CONTROLLER_BACKOFF_INITIAL_SECONDS": "0.2",
            "ELDRIC_TRAFFIC_FLUSH_SECONDS": "0.2",
        },
    ).start()
    try:
        client = OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        for _ in range(5):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "tokens:3"}])

        # The heartbeat row carries what the process said of itself.
        described = eventually(
            lambda: (
                (i := instance(gateway))["report"].get("requests_total") == 5
                and i["report"]["controller"]["state"] == "registered"
                and i
            ),
            "a report with the five requests and a registered controller",
        )
        report = described["report"]
        assert described["live"] is True and described["uptime_seconds"] >= 0
        assert report["server"] == server and report["pid"] > 0 and report["started_at"]
        assert report["requests_in_flight"] == 0 and report["errors_total"] == 0
        assert report["process_rss_bytes"] > 10 * 1024 * 1024
        (worker,) = workers(http)
        assert report["controller"]["worker_id"] == worker["worker_id"] == described["worker_id"]
        assert report["controller"]["last_success"] and report["controller"]["consecutive_failures"] == 0
        assert SECRET not in str(described)

        with httpx.Client(base_url=gateway.url, timeout=10) as browser:
            log_in(browser)
            state = {i["instance"]: i for i in browser.get("/dashboard/api/state").json()["instances"]}
            assert state["default"]["report"]["controller"]["state"] == "registered"
            assert state["default"]["uptime_seconds"] is not None
            row = browser.get("/admin/backends/workeridentity/").text
            assert worker["worker_id"] in row and "registered" in row and "in flight" in row

            # The controller goes away: the failures show, with the last error, in all three.
            stub.terminate()
            stub.wait(10)
            failing = eventually(
                lambda: (i := instance(gateway))["report"]["controller"]["consecutive_failures"] >= 1 and i,
                "the controller's failures reported",
            )["report"]["controller"]
            assert failing["state"] == "failing" and failing["last_error"] == "cannot connect"
            assert failing["last_success"] == report["controller"]["last_success"] or failing["last_success"]
            state = {i["instance"]: i for i in browser.get("/dashboard/api/state").json()["instances"]}
            assert state["default"]["report"]["controller"]["state"] == "failing"
            page = browser.get("/admin/backends/workeridentity/").text
            assert "failing" in page and "cannot connect" in page
    finally:
        assert gateway.stop() == 0
