"""The gateway's ASGI app served for real (uvicorn, in a thread) inside the test process.

pytest-django blocks database access in every thread of this process unless a test asks
for it, so tests using this server prove the hot path never touches the ORM.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import httpx
import uvicorn

from backends.snapshot import BackendRoute, snapshot_assemble
from gateway.app import GatewayApplication
from gateway.config import GatewayConfig
from gateway.pipeline import Gateway
from gateway.snapshot import SnapshotSource
from tests.fakes.server import free_port


async def _no_django(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"not served in this test"})


class Recorder:
    """An observer that keeps every finished request, for tests to read."""

    def __init__(self) -> None:
        self.finished = []
        self.event = threading.Event()

    def request_finished(self, ctx) -> None:
        self.finished.append(ctx)
        self.event.set()

    def wait_for(self, count: int, timeout: float = 10) -> list:
        deadline = time.monotonic() + timeout
        while len(self.finished) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.finished)} requests finished, expected {count}")
            time.sleep(0.01)
        return self.finished


class GatewayServer:
    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.port = free_port()
        self.recorder = Recorder()
        self.gateway = Gateway(
            config=config or GatewayConfig(), snapshots=SnapshotSource(database=False), observers=[self.recorder]
        )
        self.app = GatewayApplication(self.gateway, _no_django)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                access_log=False,
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="gateway-under-test", daemon=True)

    def configure(self, **changes) -> GatewayServer:
        """Serve from now on with a gateway built from these settings (``GatewayConfig`` fields),
        keeping the installed routes."""
        self.gateway = self.app.gateway = Gateway(
            config=dataclasses.replace(self.gateway.config, **changes),
            snapshots=self.gateway.snapshots,
            observers=[self.recorder],
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def route(
        self,
        *backends: tuple[BackendRoute, list[str]],
        default: str = "",
        worker_id: str = "cld-0000test",
        version: int = 1,
    ) -> None:
        """Install a routing snapshot: each backend with the model ids it lists."""
        self.gateway.snapshots.install(
            snapshot_assemble(
                version=version,
                worker_id=worker_id,
                routes=[route for route, _ in backends],
                models={route.name: [(m, 1700000000) for m in models] for route, models in backends},
                default_backend=default or (backends[0][0].name if backends else ""),
            )
        )

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), **kwargs)
