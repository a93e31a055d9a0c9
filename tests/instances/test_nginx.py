"""Debian's nginx in front of three real ``eldric-cloudd`` instances on one PostgreSQL and one
Redis (issue 12, "Deployment"), with the proxy settings that ship in ``deploy/nginx/``.

nginx runs as an ordinary child process: a generated config in a temporary directory
(``-p``/``-c``), ``daemon off``, its pid, logs and temp files there too. It is installed by
``make browser-deps`` (the Makefile's apt list); without it the test skips, or fails under
``ELDRIC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from aiohttp import web

from tests.conftest import service_missing
from tests.fakes import recordings
from tests.fakes.server import free_port, openai_models
from tests.instances import shared_support
from tests.instances.conftest import ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[2]
PROXY_SETTINGS = REPO / "deploy" / "nginx" / "eldric-proxy.conf"
USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHAT = "/v1/chat/completions"
redis_env = shared_support.redis_env  # the module's Redis, a fixture


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        service_missing("nginx (apt-get install nginx-light; `make browser-deps` does it)")
    return found


class Nginx:
    def __init__(self, upstreams: list[int]) -> None:
        self.binary = nginx_binary()
        # Not under pytest's tmp_path: when the test runs as root, nginx's workers run as
        # nobody and must reach their temp directories.
        self.prefix = Path(tempfile.mkdtemp(prefix="eldric-nginx-"))
        self.prefix.chmod(0o755)
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in upstreams)
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        # The upstream block and server mirror deploy/nginx/eldric-cloud.conf; the proxy
        # settings are that file's include, as shipped.
        self.config = self.prefix / "nginx.conf"
        self.config.write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {self.prefix}/access.log;
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/proxy;
    fastcgi_temp_path {self.prefix}/fastcgi;
    uwsgi_temp_path {self.prefix}/uwsgi;
    scgi_temp_path {self.prefix}/scgi;
    upstream eldric_cloud {{
{servers}
        keepalive 64;
        keepalive_timeout 5s;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            include {PROXY_SETTINGS};
            proxy_pass http://eldric_cloud;
            # For the test: which instance answered.
            add_header X-Test-Upstream $upstream_addr always;
        }}
    }}
}}
""")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.prefix / "stderr.log", "wb"),  # noqa: SIM115 - the child's lifetime
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{self.logs()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in (self.prefix / "stderr.log", self.prefix / "error.log") if p.exists()
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


def slow_reply(seconds: float):
    body = recordings.response("openai", "chat_text")

    async def behaviour(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(body=body, content_type="application/json")

    return behaviour


@pytest.fixture
def cluster(instances, redis_env, fake_provider):
    """Three instances with one backend each of them declares, and nginx in front."""
    upstream = fake_provider("lb")
    upstream.on("GET", "/v1/models", openai_models("m-lb"))
    upstream.on("POST", CHAT, slow_reply(0.05))
    run = uuid.uuid4().hex[:6]
    flag = f"lb{run}:{upstream.url}/v1"
    env = {**redis_env, "ELDRIC_MAX_ATTEMPTS": "3", "ELDRIC_DRAIN_SECONDS": "20"}
    nodes = [instances(f"lb{run}-{n}", "--backends", flag, env=env) for n in range(3)]
    for node in nodes:
        node.wait_for(lambda n=node: "m-lb" in n.models(), "the catalogue")
    nginx = Nginx([node.port for node in nodes]).start()
    yield nodes, nginx, upstream
    nginx.stop()


def chat(base_url: str, key: str = "k", timeout: float = 60):
    with openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=timeout) as client:
        try:
            return client.chat.completions.with_raw_response.create(model="m-lb", messages=USER)
        except openai.APIStatusError as exc:
            return exc


def test_nginx_spreads_chat_requests_over_all_three_instances(cluster):
    nodes, nginx, _ = cluster
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: chat(nginx.url), range(30)))
    assert [a.status_code for a in answers] == [200] * 30
    served = Counter(a.headers["x-test-upstream"] for a in answers)
    assert set(served) == {f"127.0.0.1:{node.port}" for node in nodes}, served


def test_a_key_at_n_rpm_gets_exactly_n_across_the_three_instances(cluster):
    nodes, nginx, _ = cluster
    created = nodes[0].post("/api/v1/keys", headers=ADMIN, json={"name": "lb", "rpm": 12})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    for node in nodes:
        node.wait_for(
            lambda n=node: n.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200,
            "the new key in every instance",
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: chat(nginx.url, key), range(20)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 12, 429: 8}, statuses
    # And the 200s came from more than one instance: the limit held across them.
    assert len({a.headers["x-test-upstream"] for a in answers if a.status_code == 200}) > 1


def test_stopping_one_instance_gracefully_loses_no_request(cluster):
    nodes, nginx, upstream = cluster
    upstream.on("POST", CHAT, slow_reply(0.5))
    results: list = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            results.append(chat(nginx.url))

    workers = [threading.Thread(target=load) for _ in range(6)]
    for worker in workers:
        worker.start()
    time.sleep(1.5)
    # when: one instance gets SIGTERM with requests in flight on it
    in_flight_before = len(upstream.requests_to(CHAT))
    nodes[1].terminate()
    assert nodes[1].wait_exit(30) == 0
    time.sleep(1.5)
    stop.set()
    for worker in workers:
        worker.join(60)

    # then: every request got its answer, including those the stopped instance was serving
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: len(results)}, (statuses, [str(r) for r in results if r.status_code != 200][:3])
    assert len(upstream.requests_to(CHAT)) > in_flight_before
    # and the two others served what came after
    after = [r.headers["x-test-upstream"] for r in results[-6:]]
    assert f"127.0.0.1:{nodes[1].port}" not in after
    assert httpx.get(nginx.url + "/health", timeout=5).status_code == 200


def test_a_backend_added_through_one_instance_is_routable_through_all_three_within_two_seconds(cluster, fake_provider):
    nodes, nginx, _ = cluster
    added = fake_provider("lb-added")
    added.on("GET", "/v1/models", openai_models("m-lb-added"))
    added.on("POST", CHAT, slow_reply(0))
    name = f"lbadd{uuid.uuid4().hex[:6]}"
    created = nodes[0].post(
        "/api/v1/backends", json={"name": name, "type": "openai_compatible", "url": added.url + "/v1"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    try:
        began = time.monotonic()
        for node in nodes:
            node.wait_for(lambda n=node: "m-lb-added" in n.models(), "the new model", timeout=5, interval=0.05)
        assert time.monotonic() - began < 2
        with openai.OpenAI(base_url=nginx.url + "/v1", api_key="k", max_retries=0, timeout=30) as client:
            for _ in range(3):  # round robin: each instance once
                client.chat.completions.create(model="m-lb-added", messages=USER)
        assert len(added.requests_to(CHAT)) == 3
    finally:
        nodes[0].client().delete(f"/api/v1/backends/{name}", headers=ADMIN)


def test_a_circuit_opened_by_traffic_on_instance_two_is_respected_by_instance_three(cluster):
    nodes, _, upstream = cluster
    upstream.on("POST", CHAT, reply_500())
    assert [chat(nodes[1].url).status_code for _ in range(2)] == [500, 500]
    sent = len(upstream.requests_to(CHAT))

    time.sleep(1.0)
    refused = chat(nodes[2].url)
    assert refused.status_code == 503
    assert "circuit_open" in str(refused.body)
    assert len(upstream.requests_to(CHAT)) == sent


def reply_500():
    async def behaviour(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "broken", "type": "server_error"}}, status=500)

    return behaviour
