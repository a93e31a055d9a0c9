"""The dashboard in a real eldric-cloudd, under both servers: staff login through the
admin's form, the page and its assets, and the websocket routed to Channels by the ASGI
entry point (eldric_cloud/asgi.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.cli_process import GatewayProcess, clean_environment
from tests.server.conftest import ROOT

PASSWORD = "pw-ops-123"


def create_superuser(data_dir) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "createsuperuser", "--noinput", "--username", "ops", "--email", ""],
        env=clean_environment(ELDRIC_DATA_DIR=str(data_dir), DJANGO_SUPERUSER_PASSWORD=PASSWORD),
        check=True,
        timeout=60,
        capture_output=True,
    )


def log_in(client: httpx.Client) -> None:
    form = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    done = client.post(
        "/admin/login/?next=/dashboard/",
        data={"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/dashboard/"},
        headers={"Referer": str(client.base_url) + "/admin/login/"},
    )
    assert done.status_code == 302, done.text[:500]
    assert "sessionid" in client.cookies


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_the_dashboard_and_its_websocket_in_a_real_process(server, data_dir):
    directory = data_dir()
    create_superuser(directory)
    process = GatewayProcess(data_dir=directory, server=server, env={"ELDRIC_DASHBOARD_PUSH_SECONDS": "0.2"}).start()
    try:
        with process.client() as client:
            assert client.get("/dashboard/").status_code == 302  # to the login page
            log_in(client)
            page = client.get("/dashboard/")
            assert page.status_code == 200 and 'id="eldric-dashboard"' in page.text
            script = client.get("/static/dashboard/vendor/uplot/uPlot.iife.min.js")
            assert script.status_code == 200 and "uPlot" in script.text
            assert client.get("/static/dashboard/dashboard.js").status_code == 200
            state = client.get("/dashboard/api/state").json()
            assert [i["instance"] for i in state["instances"]] == ["default"]
            cookie = f"sessionid={client.cookies['sessionid']}"

        ws_url = process.url.replace("http://", "ws://") + "/dashboard/ws/"
        with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": process.url}, open_timeout=10) as socket:
            first = json.loads(socket.recv(timeout=10))
            assert first["type"] == "state" and first["state"]["instances"][0]["worker_id"].startswith("cld-")
            pushed = json.loads(socket.recv(timeout=10))  # the publisher's, not an answer to anything
            assert pushed["type"] == "state" and pushed["state"]["generated_at"] != first["state"]["generated_at"]

        for headers in ({"Origin": process.url}, {"Cookie": cookie, "Origin": "https://evil.example"}):
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url, additional_headers=headers, open_timeout=10)
            assert refused.value.response.status_code == 403
        assert process.get("/health").status_code == 200
    finally:
        process.stop()
