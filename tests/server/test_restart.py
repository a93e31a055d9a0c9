"""A zero-downtime restart on one machine: ``--replace PID`` on the same port (SO_REUSEPORT).

A client looping requests across the restart, on keep-alive and on fresh connections, with
requests in flight at the moment of the switch, sees no failure at all.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
from aiohttp import web

from tests.cli_process import GatewayProcess, run_cli
from tests.fakes.server import openai_models

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


async def slow_completion(request: web.Request) -> web.Response:
    await asyncio.sleep(0.05)  # so that requests are in flight whenever the old process stops
    return web.json_response(COMPLETION)


class LoopingClient(threading.Thread):
    """Requests one after another until stopped; every failure is kept, with what it was."""

    def __init__(self, url: str, *, keep_alive: bool) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.keep_alive = keep_alive
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + 90  # bounded even if the test never stops it
        # Without keep-alive, every request opens a new connection (and may land on either process).
        limits = httpx.Limits() if self.keep_alive else httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.url, timeout=15, limits=limits) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    response = client.post("/v1/chat/completions", json=CHAT)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "hello":
                    self.ok += 1
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")

    def wait_for(self, count: int, timeout: float = 30) -> None:
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target and time.monotonic() < deadline and not self.failures:
            time.sleep(0.02)


# Daphne, the default. uvicorn passes the same test (server="uvicorn"); it is left out to keep
# tests/server fast, and its drain is covered by test_drain.py.
@pytest.mark.parametrize("server", ["daphne"])
def test_a_looping_client_sees_no_failure_across_a_restart(fake_provider, server, data_dir):
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    fake.on("POST", "/v1/chat/completions", slow_completion)
    backends = ("--backends", f"openai:{fake.url}/v1:sk-k-1234")
    shared = data_dir()  # one data dir for both, as a real restart has
    old = GatewayProcess("--reuse-port", *backends, server=server, data_dir=shared, name="old").start()
    new = GatewayProcess(
        "--replace", str(old.pid), *backends, server=server, data_dir=shared, port=old.port, name="new"
    )
    clients = [LoopingClient(old.url, keep_alive=True), LoopingClient(old.url, keep_alive=False)]
    try:
        for client in clients:
            client.start()
        for client in clients:
            client.wait_for(10)
        new.start()
        assert old.wait_exit(30) == 0
        for client in clients:
            client.wait_for(15)  # served by the new process alone now
    finally:
        for client in clients:
            client.stop.set()
            client.join(20)
        new.stop()
        old.stop()
    for client in clients:
        assert client.failures == [], f"keep_alive={client.keep_alive}: {client.failures[:5]}"
        assert client.ok >= 25
    assert "drained" in old.logs()
    assert f"sent SIGTERM to the process replaced (pid {old.pid})" in new.logs()


def test_a_port_held_without_reuse_port_stops_start_up_with_a_hint():
    with socket.socket() as held:  # an instance started without --reuse-port
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = run_cli("--port", str(port), "--host", "127.0.0.1", "--reuse-port", "--no-worker", timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--reuse-port" in result.stderr
