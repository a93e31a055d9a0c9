"""Fake providers: real HTTP servers on 127.0.0.1 that replay recorded traffic.

Each runs aiohttp on its own event loop in a background thread, records every request it
receives, and answers each (method, path) with a behaviour set by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeProvider:
    name: str = "fake"
    port: int = field(default_factory=free_port)
    received: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._behaviours: dict[tuple[str, str], Behaviour] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.closed_streams = 0  # streams whose client went away before the end

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, method: str, path: str, behaviour: Behaviour) -> FakeProvider:
        self._behaviours[(method.upper(), path)] = behaviour
        return self

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        return [r for r in self.received if r.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(ReceivedRequest(request.method, request.path, dict(request.headers), body))
        behaviour = self._behaviours.get((request.method, request.path))
        if behaviour is None:
            return web.json_response({"error": {"message": f"fake has no route {request.path}"}}, status=404)
        return await behaviour(request)

    def start(self) -> FakeProvider:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake provider did not start")
        return self

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        # Handlers still hanging (hang(), held streams) must not outlive the loop.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop = None


# --- behaviours -----------------------------------------------------------------------------


def reply_bytes(
    body: bytes, *, status: int = 200, content_type: str = "application/json", headers: dict[str, str] | None = None
) -> Behaviour:
    async def behaviour(request: web.Request) -> web.Response:
        return web.Response(
            body=body, status=status, content_type=None, headers={"Content-Type": content_type, **(headers or {})}
        )

    return behaviour


def reply_json(data, *, status: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    return reply_bytes(json.dumps(data).encode(), status=status, headers=headers)


def reply_stream(
    frames: list[bytes],
    *,
    content_type: str = "text/event-stream; charset=utf-8",
    delay: float = 0.0,
    hold_before_last: threading.Event | None = None,
    drop_after: int | None = None,
    fake: FakeProvider | None = None,
) -> Behaviour:
    """Send ``frames`` one write at a time.

    ``hold_before_last`` keeps the last frame back until the test sets it; ``drop_after``
    cuts the connection after that many frames, as a provider failing mid-stream would.
    """

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            for index, frame in enumerate(frames):
                if drop_after is not None and index == drop_after:
                    request.transport.close()
                    return response
                if hold_before_last is not None and index == len(frames) - 1:
                    while not hold_before_last.is_set():
                        if request.transport is None or request.transport.is_closing():
                            raise ConnectionResetError("client went away while the last frame was held")
                        await asyncio.sleep(0.01)
                await response.write(frame)
                if delay:
                    await asyncio.sleep(delay)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            if fake is not None:
                fake.closed_streams += 1
            raise
        return response

    return behaviour


def hang(seconds: float = 3600) -> Behaviour:
    async def behaviour(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(status=204)

    return behaviour


def openai_models(*ids: str, owned_by: str = "system") -> Behaviour:
    return reply_json(
        {
            "object": "list",
            "data": [{"id": i, "object": "model", "created": 1700000000, "owned_by": owned_by} for i in ids],
        }
    )


def hold_until_closed(closed: threading.Event, seconds: float = 30) -> Behaviour:
    """Answer nothing; set ``closed`` as soon as the gateway drops the connection.

    aiohttp does not cancel a handler whose client left, so the transport is watched."""

    async def behaviour(request: web.Request) -> web.Response:
        for _ in range(int(seconds * 100)):
            if request.transport is None or request.transport.is_closing():
                closed.set()
                break
            await asyncio.sleep(0.01)
        return web.Response(status=204)

    return behaviour
