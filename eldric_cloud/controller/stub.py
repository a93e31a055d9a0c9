"""``eldric-controller-stub``: a reference controller that speaks the protocol, for tests and demos.

It keeps workers in memory (``registry``), checks ``X-Eldric-Cluster-Secret`` when a secret
is set, marks a worker offline after ``--offline-after`` seconds without a heartbeat and
lists workers at ``GET /api/v1/workers``. It is not the Eldric controller: no routing, no
persistence, no dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
import time

from aiohttp import web

from eldric_cloud.controller.protocol import (
    DEFAULT_WORKERS_PATH,
    SECRET_HEADER,
    WORKER_NOT_FOUND,
    error_body,
    payload_problem,
)
from eldric_cloud.controller.registry import WorkerRegistry

logger = logging.getLogger("eldric_cloud.controller.stub")

MAX_BODY_BYTES = 8 * 1024 * 1024
REGISTRY = web.AppKey("registry", WorkerRegistry)


def _error(status: int, message: str, *, code: str, param: str | None = None) -> web.Response:
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    if status == 401:
        type_ = "authentication_error"
    return web.json_response(error_body(message, code=code, type_=type_, param=param), status=status)


def build_app(
    registry: WorkerRegistry, *, secret: str = "", workers_path: str = DEFAULT_WORKERS_PATH
) -> web.Application:
    base = "/" + workers_path.strip("/")
    expected = secret.encode("utf-8", "surrogateescape")

    @web.middleware
    async def guard(request: web.Request, handler):
        if secret and request.path.startswith(base):
            # aiohttp's headers ignore case, so x-eldric-cluster-secret (HTTP/2) is accepted too.
            given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, expected):
                return _error(401, "Missing or wrong X-Eldric-Cluster-Secret.", code="invalid_cluster_secret")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status == 413:
                return _error(413, f"The body is over {MAX_BODY_BYTES} bytes.", code="body_too_large")
            return _error(exc.status, exc.reason or "Request refused.", code="http_error")

    async def put_worker(request: web.Request) -> web.Response:
        worker_id = request.match_info["worker_id"]
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "The body is not JSON.", code="invalid_json")
        if problem := payload_problem(payload, path_worker_id=worker_id):
            param, message = problem
            return _error(400, message, code="invalid_payload", param=param or None)
        was_online = worker_id in {w["worker_id"] for w in registry.listing("online")}
        status, body = registry.upsert(worker_id, payload)
        if status < 300 and not was_online:
            logger.info("worker %s (%s) online at %s", worker_id, payload["worker_type"], payload["url"])
        return web.json_response(body, status=status)

    async def get_worker(request: web.Request) -> web.Response:
        _report_offline(registry)
        worker = registry.get(request.match_info["worker_id"])
        if worker is None:
            return _error(404, "Unknown worker.", code=WORKER_NOT_FOUND)
        return web.json_response(worker)

    async def delete_worker(request: web.Request) -> web.Response:
        worker_id = request.match_info["worker_id"]
        if not registry.deregister(worker_id):
            return _error(404, "Unknown worker.", code=WORKER_NOT_FOUND)
        logger.info("worker %s deregistered", worker_id)
        return web.Response(status=204)

    async def list_workers(request: web.Request) -> web.Response:
        _report_offline(registry)
        status = request.query.get("status") or None
        return web.json_response({"object": "list", "data": registry.listing(status)})

    async def health(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "workers": len(registry.listing()), "online": len(registry.listing("online"))}
        )

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY_BYTES)
    app[REGISTRY] = registry
    item = base + "/{worker_id}"
    app.router.add_get(base, list_workers)
    app.router.add_put(item, put_worker)
    app.router.add_get(item, get_worker)
    app.router.add_delete(item, delete_worker)
    app.router.add_get("/health", health)
    return app


def _report_offline(registry: WorkerRegistry) -> None:
    for worker_id in registry.newly_offline():
        logger.warning("worker %s offline: no heartbeat for %gs", worker_id, registry.offline_after)


async def _log_offline(registry: WorkerRegistry) -> None:
    # Status is computed when read; this tells the operator when a worker goes silent, and
    # reads report it too, so a listing never shows an offline worker the log has not named.
    while True:
        await asyncio.sleep(max(0.05, min(5.0, registry.offline_after / 3)))
        _report_offline(registry)


class StubServer:
    """The stub on a running loop: ``await start()``, ``url``, ``await stop()`` (tests use it directly)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: str = "",
        offline_after: float = 90.0,
        workers_path: str = DEFAULT_WORKERS_PATH,
    ) -> None:
        self.registry = WorkerRegistry(offline_after=offline_after, clock=time.monotonic, wall_clock=time.time)
        self.app = build_app(self.registry, secret=secret, workers_path=workers_path)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> StubServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.get_running_loop().create_task(_log_offline(self.registry))
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._runner is not None:
            await self._runner.cleanup()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eldric-controller-stub",
        description="A reference controller for eldric-cloudd's registration protocol (tests and demos).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8880, help="listen port (default 8880; 0 picks a free one)")
    parser.add_argument(
        "--offline-after", type=float, default=90.0, help="seconds without a heartbeat before a worker is offline"
    )
    parser.add_argument("--workers-path", default=DEFAULT_WORKERS_PATH, help="default /api/v1/workers")
    parser.add_argument(
        "--cluster-secret-env",
        default="ELDRIC_CLUSTER_SECRET",
        help="environment variable holding the cluster secret (default ELDRIC_CLUSTER_SECRET; unset: no check)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    server = StubServer(
        host=args.host,
        port=args.port,
        secret=os.environ.get(args.cluster_secret_env, ""),
        offline_after=args.offline_after,
        workers_path=args.workers_path,
    )
    await server.start()
    print(f"eldric-controller-stub: listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.offline_after <= 0:
        print("eldric-controller-stub: --offline-after must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"eldric-controller-stub: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
