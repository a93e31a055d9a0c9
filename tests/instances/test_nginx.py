"""Debian's nginx in front of three real ``eldric-cloudd`` instances on one PostgreSQL and one
Redis (issue 12, "Deployment"), with the proxy settings that ship in ``deploy/nginx/``, each
instance registered with a real ``eldric-controller-stub``.

nginx runs as an ordinary child process: a generated config in a temporary directory
(``-p``/``-c``), ``daemon off``, its pid, logs and temp files there too. It is installed by
``make browser-deps`` (the Makefile's apt list); without it the test skips, or fails under
``ELDRIC_REQUIRE_SERVICES=1``.

One cluster serves the whole module, since starting three instances is the expensive part.
Tests that stop or kill an instance, open a circuit or change the upstream's answers leave it
so; the ``cluster`` fixture puts it back before each test (restarts what is down, waits for
circuits to close and for nginx to use all three again).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from aiohttp import web

from tests.cli_process import GatewayProcess, clean_environment, license_environment
from tests.conftest import service_missing
from tests.controller.stub_process import StubController, stub_controller_start
from tests.fakes import recordings
from tests.fakes.server import FakeProvider, free_port, openai_models
from tests.instances import shared_support
from tests.instances.conftest import ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[2]
PROXY_SETTINGS = REPO / "deploy" / "nginx" / "eldric-proxy.conf"
USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHAT = "/v1/chat/completions"
# The reference controller marks a worker offline after this long without a heartbeat (90 s in
# production); the instances beat every second, so a live one is never near it.
OFFLINE_AFTER = 5.0
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


def gated_reply(gate: threading.Event):
    """Answers only once ``gate`` is set: until then every request sent upstream is held."""
    body = recordings.response("openai", "chat_text")

    async def behaviour(request: web.Request) -> web.Response:
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return web.Response(body=body, content_type="application/json")

    return behaviour


def reply_500():
    async def behaviour(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "broken", "type": "server_error"}}, status=500)

    return behaviour


def eventually(check, what: str, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"never: {what} (last: {last!r})")


@dataclass
class Failed:
    """A request that got no HTTP answer at all (the SDK raised)."""

    error: str
    status_code: None = None
    headers: dict | None = None


def chat(base_url: str, key: str = "k", timeout: float = 60):
    """A non-streamed chat request through the official SDK: the raw answer, or the SDK's error."""
    with openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=timeout) as client:
        try:
            return client.chat.completions.with_raw_response.create(model="m-lb", messages=USER)
        except openai.APIStatusError as exc:
            return exc
        except openai.APIError as exc:
            return Failed(repr(exc))


def answered_by(answer) -> list[str]:
    """The instances nginx tried for this answer, in order ("a, b" when it retried on b)."""
    headers = answer.headers or {}
    return [address for address in headers.get("x-test-upstream", "").split(", ") if address]


def health_counts(node: GatewayProcess) -> dict:
    return node.get("/health").json()["backends"]


def kill(node: GatewayProcess) -> None:
    """SIGKILL: no drain, no deregistration, connections cut where they are."""
    node.process.send_signal(signal.SIGKILL)
    node.process.wait(15)


class Load:
    """``clients`` threads sending chat requests through nginx back to back until stopped."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.results: list = []
        self.firsts: list = []  # each client's first answer
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            answer = chat(self.url)
            if first:
                self.firsts.append(answer)
                first = False
            self.results.append(answer)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    def wait_for(self, count: int, what: str) -> None:
        eventually(lambda: len(self.results) >= count, what, timeout=90)


@dataclass
@dataclass
class Cluster:
    nodes: list[GatewayProcess]
    nginx: Nginx
    upstream: FakeProvider
    controller: StubController
    env: dict[str, str]

    @property
    def addresses(self) -> set[str]:
        return {f"127.0.0.1:{node.port}" for node in self.nodes}

    def restore(self) -> None:
        """What an earlier test changed goes back: the upstream's answer, instances that were
        stopped or killed (restarted under the same name, so the same cld- id), open circuits."""
        self.upstream.on("POST", CHAT, slow_reply(0.05))
        for node in self.nodes:
            if node.process.poll() is not None:
                node.start(timeout=60)
        for node in self.nodes:
            # An open circuit refuses until its cooldown ends; the trial request then closes it.
            node.wait_for(
                lambda n=node: chat(n.url, timeout=10).status_code == 200, "a chat answered", timeout=30, interval=0.2
            )
        # nginx leaves an instance it saw fail out for fail_timeout (5 s).
        seen: set[str] = set()

        def all_used() -> bool:
            seen.update(answered_by(httpx.get(self.nginx.url + "/health", timeout=5))[-1:])
            return seen >= self.addresses

        eventually(all_used, "nginx to send to all three instances", interval=0.05)


@pytest.fixture(scope="module")
def controller():
    """The reference controller, as a process."""
    stub = stub_controller_start("--offline-after", str(OFFLINE_AFTER))
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def upstream():
    fake = FakeProvider(name="lb").start()
    fake.on("GET", "/v1/models", openai_models("m-lb"))
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def running_cluster(shared_env, redis_env, upstream, controller, tmp_path_factory):
    """Three instances, each declaring the same backend and registered with the controller
    (heartbeat every second), and nginx in front."""
    nginx_binary()  # skip or fail before starting anything
    run = uuid.uuid4().hex[:6]
    flag = f"lb{run}:{upstream.url}/v1"
    base = tmp_path_factory.mktemp("cluster")
    env = {
        **shared_env,
        **redis_env,
        "ELDRIC_MAX_ATTEMPTS": "3",
        "ELDRIC_DRAIN_SECONDS": "20",
        "ELDRIC_HEARTBEAT_SECONDS": "1",
    }
    nodes = [
        GatewayProcess(
            "--backends",
            flag,
            "--controller",
            controller.url,
            # No instance runs a worker: backends are probed only while a test runs one (a probe
            # that closed a circuit would spoil the circuit test). Then, every half second.
            "--health-interval",
            "500",
            env={**env, "ELDRIC_INSTANCE": f"lb{run}-{n}"},
            data_dir=base / f"lb{run}-{n}",
            name=f"lb{run}-{n}",
        )
        for n in range(3)
    ]
    nginx = None
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda node: node.start(timeout=90), nodes))
        for node in nodes:
            node.wait_for(lambda n=node: "m-lb" in n.models(), "the catalogue")
        nginx = Nginx([node.port for node in nodes]).start()
        yield Cluster(nodes, nginx, upstream, controller, env)
    finally:
        if nginx is not None:
            nginx.stop()
        for node in nodes:
            node.stop()


@pytest.fixture
def cluster(running_cluster) -> Cluster:
    running_cluster.restore()
    return running_cluster


def test_nginx_spreads_chat_requests_over_all_three_instances(cluster):
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: chat(cluster.nginx.url), range(30)))
    assert [a.status_code for a in answers] == [200] * 30
    served = Counter(a.headers["x-test-upstream"] for a in answers)
    assert set(served) == cluster.addresses, served


def test_a_key_at_n_rpm_gets_exactly_n_across_the_three_instances(cluster):
    nodes = cluster.nodes
    created = nodes[0].post("/api/v1/keys", headers=ADMIN, json={"name": f"lb{uuid.uuid4().hex[:6]}", "rpm": 12})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    for node in nodes:
        node.wait_for(
            lambda n=node: n.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200,
            "the new key in every instance",
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: chat(cluster.nginx.url, key), range(20)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 12, 429: 8}, statuses
    # And the 200s came from more than one instance: the limit held across them.
    assert len({a.headers["x-test-upstream"] for a in answers if a.status_code == 200}) > 1


def test_stopping_one_instance_gracefully_loses_no_request(cluster):
    nodes, upstream = cluster.nodes, cluster.upstream
    upstream.on("POST", CHAT, slow_reply(0.5))
    with Load(cluster.nginx.url, clients=6) as load:
        load.wait_for(12, "load before the stop")
        # when: one instance gets SIGTERM with requests in flight on it
        in_flight_before = len(upstream.requests_to(CHAT))
        nodes[1].terminate()
        assert nodes[1].wait_exit(30) == 0
        done = len(load.results)
        load.wait_for(done + 12, "load after the stop")
    results = load.results

    # then: every request got its answer, including those the stopped instance was serving
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: len(results)}, (statuses, [str(r) for r in results if r.status_code != 200][:3])
    assert len(upstream.requests_to(CHAT)) > in_flight_before
    # and the two others served what came after
    after = [answered_by(r)[-1] for r in results[-6:]]
    assert f"127.0.0.1:{nodes[1].port}" not in after
    assert httpx.get(cluster.nginx.url + "/health", timeout=5).status_code == 200


def test_killing_one_instance_mid_load_loses_no_request(cluster):
    """SIGKILL with non-streamed requests in flight on the instance. Every request held there
    had been sent to the upstream and none had been answered (the upstream holds them all),
    so none had started streaming: nginx must pass each to another instance, and every
    client gets its 200. (Once a byte of an answer reached the client nginx cannot retry;
    holding the upstream keeps any answer from being under way at the kill.) nginx can pass
    on a request it has sent only while it holds the whole body: the shipped
    ``proxy_request_buffering on``; with it off, this test sees 502s."""
    nodes, upstream = cluster.nodes, cluster.upstream
    victim = nodes[1]
    gate = threading.Event()
    upstream.on("POST", CHAT, gated_reply(gate))
    clients = 12
    sent_before = len(upstream.requests_to(CHAT))
    try:
        with Load(cluster.nginx.url, clients=clients) as load:
            # Every client's request is held upstream: about a third of them sent by the victim.
            eventually(lambda: len(upstream.requests_to(CHAT)) - sent_before >= clients, "all requests held upstream")
            # when: the victim is killed with them in flight, then the upstream answers
            kill(victim)
            gate.set()
            # Load goes on past the kill: new requests meet the victim's closed port.
            load.wait_for(clients * 4, "load after the kill")
    finally:
        gate.set()
    results = load.results

    # then: no request failed
    failures = [r for r in results if r.status_code != 200]
    assert failures == [], (len(failures), len(results), [str(r) for r in failures[:3]])
    # and those the victim held (each client's first request was held) were answered by
    # another instance once nginx passed them on
    victim_address = f"127.0.0.1:{victim.port}"
    held = [answered_by(r) for r in load.firsts]
    retried = [tried for tried in held if tried[0] == victim_address]
    assert retried, held
    assert all(len(tried) >= 2 and tried[-1] != victim_address for tried in retried), held


def test_three_distinct_cld_ids_register_and_a_killed_instance_goes_offline(cluster):
    nodes, controller = cluster.nodes, cluster.controller
    ids = [node.get("/health").json()["worker_id"] for node in nodes]
    assert len(set(ids)) == 3 and all(worker_id.startswith("cld-") for worker_id in ids), ids

    def all_online():
        workers = controller.workers()
        return all(workers.get(worker_id, {}).get("status") == "online" for worker_id in ids) and workers

    workers = eventually(all_online, "three workers online at the controller")
    for node, worker_id in zip(nodes, ids, strict=True):
        assert workers[worker_id]["worker_type"] == "cloud"
        assert workers[worker_id]["url"].endswith(f":{node.port}")
        assert node.get("/health").json()["controller"]["worker_id"] == worker_id

    # when: one instance is killed, so it cannot deregister
    kill(nodes[2])
    beats = controller.workers()[ids[2]]["heartbeats"]

    # then: once OFFLINE_AFTER has passed without a heartbeat it is offline; the others stay online
    workers = eventually(
        lambda: (w := controller.workers())[ids[2]]["status"] == "offline" and w,
        "the killed instance offline",
        timeout=OFFLINE_AFTER + 30,
    )
    assert workers[ids[2]]["heartbeats"] == beats
    assert workers[ids[2]]["seconds_since_heartbeat"] >= OFFLINE_AFTER  # rounded to 0.1 s
    assert [workers[worker_id]["status"] for worker_id in ids[:2]] == ["online", "online"]


def probing_worker(cluster: Cluster, data_dir: Path) -> subprocess.Popen:
    """The deployment's one Celery worker with its beat, as ``celery -A eldric_cloud worker -B``
    runs on any host that reaches the database and Redis."""
    env = {k: v for k, v in cluster.env.items() if k != "ELDRIC_INSTANCE"}
    env = clean_environment(
        **license_environment(),
        **env,
        ELDRIC_DATA_DIR=str(data_dir),
        ELDRIC_SCHEDULER_TICK_SECONDS="0.5",
        DJANGO_SETTINGS_MODULE="eldric_cloud.settings",
    )
    command = [sys.executable, "-m", "celery", "-A", "eldric_cloud", "--quiet", "worker", "-B"]
    command += ["--pool", "threads", "--concurrency", "2", "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    command += ["-s", str(data_dir / "celerybeat-schedule"), "-n", f"nginx-test-{uuid.uuid4().hex[:6]}@%h"]
    log = open(data_dir / "worker.log", "ab")  # noqa: SIM115 - the child's lifetime
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_backend_that_dies_is_seen_unhealthy_by_all_three_instances(cluster, tmp_path):
    nodes = cluster.nodes
    dying = FakeProvider(name="dying").start()
    dying.on("GET", "/v1/models", openai_models("m-dying"))
    name = f"lbdie{uuid.uuid4().hex[:6]}"
    worker = None
    try:
        spec = {"name": name, "type": "openai_compatible", "url": dying.url + "/v1"}
        created = nodes[0].post("/api/v1/backends", json=spec, headers=ADMIN)
        assert created.status_code == 201, created.text
        for node in nodes:
            node.wait_for(lambda n=node: health_counts(n)["healthy"] == 2, "both backends healthy")
        worker = probing_worker(cluster, tmp_path)
        probed = len(dying.requests_to("/v1/models"))
        eventually(lambda: len(dying.requests_to("/v1/models")) >= probed + 2, "the worker probing", timeout=90)

        # when: the backend goes away
        dying.stop()

        # then: every instance, asked directly, counts it unhealthy and would not route to it
        for node in nodes:
            node.wait_for(lambda n=node: health_counts(n) == {"total": 2, "healthy": 1, "unhealthy": 1}, "unhealthy")
            described = node.get(f"/api/v1/backends/{name}", headers=ADMIN).json()
            assert (described["health_status"], described["routable"]) == ("unhealthy", False), described
    finally:
        if worker is not None:
            stop_process(worker)
        dying.stop()
        nodes[0].client().delete(f"/api/v1/backends/{name}", headers=ADMIN)
        for node in nodes:
            node.wait_for(lambda n=node: health_counts(n)["total"] == 1, "the backend gone")


def test_a_backend_added_through_one_instance_is_routable_through_all_three_within_two_seconds(cluster, fake_provider):
    nodes = cluster.nodes
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
        with openai.OpenAI(base_url=cluster.nginx.url + "/v1", api_key="k", max_retries=0, timeout=30) as client:
            for _ in range(3):  # round robin: each instance once
                client.chat.completions.create(model="m-lb-added", messages=USER)
        assert len(added.requests_to(CHAT)) == 3
    finally:
        nodes[0].client().delete(f"/api/v1/backends/{name}", headers=ADMIN)
        for node in nodes:
            node.wait_for(lambda n=node: "m-lb-added" not in n.models(), "the backend gone")


def test_a_circuit_opened_by_traffic_on_instance_two_is_respected_by_instance_three(cluster):
    nodes, upstream = cluster.nodes, cluster.upstream
    upstream.on("POST", CHAT, reply_500())
    assert [chat(nodes[1].url).status_code for _ in range(2)] == [500, 500]
    sent = len(upstream.requests_to(CHAT))

    # Instance three hears of the open circuit without sending anything itself.
    nodes[2].wait_for(lambda: health_counts(nodes[2])["unhealthy"] == 1, "the open circuit in instance three")
    refused = chat(nodes[2].url)
    assert refused.status_code == 503
    assert "circuit_open" in str(refused.body)
    assert len(upstream.requests_to(CHAT)) == sent
