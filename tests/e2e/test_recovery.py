"""A backend that was down when eldric-cloudd started is routable as soon as it is back."""

import json
import time

import httpx

from tests.cli_process import GatewayProcess
from tests.fakes import recordings
from tests.fakes.server import FakeProvider, free_port, openai_models, reply_bytes

USER = [{"role": "user", "content": "hi"}]


def test_a_backend_down_at_start_is_routable_within_two_seconds_of_coming_back(tmp_path):
    port = free_port()
    config = tmp_path / "eldric.json"
    backend = {"name": "late", "url": f"http://127.0.0.1:{port}/v1", "api_key": "sk-late-key-0001"}
    config.write_text(json.dumps({"backends": [backend]}))
    gateway = GatewayProcess("--config", str(config), "--health-interval", "60000").start()
    fake = FakeProvider("late", port=port)
    try:
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            assert client.get("/health").json()["status"] == "unhealthy"
            fake.on("GET", "/v1/models", openai_models("gpt-4o"))
            fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
            fake.start()
            back = time.monotonic()
            # The model is unknown to the catalogue (discovery failed), so it goes to the default
            # backend: the one that was down. No probe has run yet (interval 60 s).
            while True:
                response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
                if response.status_code == 200 or time.monotonic() - back > 2:
                    break
                time.sleep(0.1)
        assert response.status_code == 200, response.text
        assert response.headers["x-eldric-backend"] == "late"
    finally:
        gateway.stop()
        fake.stop()
