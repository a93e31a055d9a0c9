"""The worker's side of the controller protocol: a background task in the gateway process.

Only the gateway process knows its live load, so the heartbeat is sent from there: one
asyncio task on the serving loop, with its own small httpx client and short timeouts. It
never holds anything a request waits for: every send is bounded by
``ELDRIC_CONTROLLER_TIMEOUT_SECONDS``, a controller that is down or slow only stretches the
task's own back-off, and nothing in the request path awaits it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from eldric_cloud.controller.backoff import Backoff
from eldric_cloud.controller.protocol import (
    DEFAULT_WORKERS_PATH,
    SystemFigures,
    WorkerAddress,
    WorkerSnapshot,
    heartbeat_payload,
    models_hash,
    secret_headers,
    worker_path,
)
from eldric_cloud.controller.source import LoadSource
from eldric_cloud.controller.state import DEREGISTERED, DISABLED, ControllerState
from eldric_cloud.controller.system import SystemSampler
from eldric_cloud.version import package_version

logger = logging.getLogger("eldric_cloud.controller")

# An answer's body is read only for its error message; a controller cannot make us buffer more.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class ControllerConfig:
    url: str
    workers_path: str = DEFAULT_WORKERS_PATH
    secret: str = ""
    heartbeat_seconds: float = 30.0
    connect_timeout: float = 2.0
    timeout: float = 5.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    deregister_timeout: float = 2.0

    @classmethod
    def from_settings(cls, url: str | None = None) -> ControllerConfig:
        from django.conf import settings

        return cls(
            url=url if url is not None else settings.ELDRIC_CONTROLLER,
            workers_path=settings.ELDRIC_CONTROLLER_WORKERS_PATH,
            secret=settings.ELDRIC_CLUSTER_SECRET,
            heartbeat_seconds=settings.ELDRIC_HEARTBEAT_SECONDS,
            connect_timeout=settings.ELDRIC_CONTROLLER_CONNECT_TIMEOUT_SECONDS,
            timeout=settings.ELDRIC_CONTROLLER_TIMEOUT_SECONDS,
            backoff_initial=settings.ELDRIC_CONTROLLER_BACKOFF_INITIAL_SECONDS,
            backoff_max=settings.ELDRIC_CONTROLLER_BACKOFF_MAX_SECONDS,
            deregister_timeout=settings.ELDRIC_CONTROLLER_DEREGISTER_TIMEOUT_SECONDS,
        )


def display_url(url: str) -> str:
    """The controller URL without any user:password part, for logs and /health."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ControllerClient:
    def __init__(
        self,
        source: LoadSource,
        *,
        config: ControllerConfig,
        address: WorkerAddress,
        instance: str = "default",
        version: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sampler: SystemSampler | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.config = config
        self.address = address
        self.instance = instance
        self.version = version or package_version()
        self._rng = rng
        self.state = self._fresh_state()
        self._transport = transport
        self._sampler = sampler or SystemSampler()
        self._http: httpx.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        self._worker_id = ""
        # The serving loop, once ``start`` ran there (also without a URL): a config reload on
        # another thread hands a new URL over to it (``retarget_threadsafe``).
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closed = False  # the drain began: nothing starts again
        # Orders a URL set before serving began against ``start`` reading it.
        self._starting = threading.Lock()
        self._moving = asyncio.Lock()

    def _fresh_state(self) -> ControllerState:
        state = ControllerState(
            heartbeat_seconds=self.config.heartbeat_seconds,
            backoff=Backoff(initial=self.config.backoff_initial, cap=self.config.backoff_max),
            rng=self._rng,
        )
        if not self.config.url:
            state.state = DISABLED
        return state

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Register now and heartbeat from then on. Call it on the serving event loop (from a
        coroutine or a loop callback); without a controller URL it only notes the loop."""
        with self._starting:
            self.loop = asyncio.get_running_loop()
            if not self.config.url or self._task is not None or self._closed:
                return
            self._open()

    def _open(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.config.url,
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            headers={"user-agent": f"eldric-cloudd/{self.version}", **secret_headers(self.config.secret)},
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="controller-heartbeat")

    async def aclose(self, *, deregister: bool = True) -> None:
        """Stop heartbeating and, when the controller ever answered, deregister (bounded by
        ``ELDRIC_CONTROLLER_DEREGISTER_TIMEOUT_SECONDS``). Safe to call twice; nothing
        starts again afterwards, not even by ``retarget``."""
        self._closed = True
        async with self._moving:  # a move under way finishes first, so its new controller hears of it
            await self._stop(deregister=deregister)

    async def _stop(self, *, deregister: bool) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        http, self._http = self._http, None
        if http is None:
            return
        try:
            if deregister and self.state.last_success is not None and self._worker_id:
                await self._deregister(http)
        finally:
            await http.aclose()

    # --- moving to another controller (config reload) ----------------------------------------
    async def retarget(self, url: str, *, reason: str = "config reload") -> bool:
        """Move to the controller at ``url`` (``""``: none, the client is disabled). On the
        serving loop: deregister from the old one (bounded, best effort), then register with
        the new one at once. Returns whether the URL changed."""
        async with self._moving:
            if url == self.config.url or self._closed:
                return False
            logger.info("controller: %s -> %s (%s)", shown_url(self.config.url), shown_url(url), reason)
            await self._stop(deregister=True)
            self._use(url)
            if url:
                self._open()
            return True

    def retarget_threadsafe(self, url: str, *, reason: str = "config reload", timeout: float | None = None) -> bool:
        """``retarget`` from another thread (the config reloader's). Waits up to ``timeout``
        (by default the deregistration's and one send's bounds) for the move, which otherwise
        goes on on the loop by itself. Before serving began, ``start`` simply uses the new URL."""
        with self._starting:
            loop = self.loop
            if loop is None:
                if url == self.config.url or self._closed:
                    return False
                logger.info(
                    "controller: %s -> %s (%s, before serving)",
                    shown_url(self.config.url),
                    shown_url(url),
                    reason,
                )
                self._use(url)
                return True
        try:
            future = asyncio.run_coroutine_threadsafe(self.retarget(url, reason=reason), loop)
        except RuntimeError:  # the loop is closed: the process is stopping
            return False
        wait = timeout if timeout is not None else self.config.deregister_timeout + self.config.timeout + 1.0
        try:
            return future.result(wait)
        except TimeoutError:
            logger.warning("controller: still moving to %s after %.1fs; it goes on", shown_url(url), wait)
            return True
        except Exception:
            logger.exception("controller: moving to %s failed", shown_url(url))
            return False

    def _use(self, url: str) -> None:
        self.config = replace(self.config, url=url)
        # Another controller knows nothing of us: failures, acknowledged hash and counts start afresh.
        self.state = self._fresh_state()

    def controller_health(self) -> dict:
        """For ``/health`` (``"controller": {...}``): plain values, no secret."""
        if not self.config.url:
            return {"configured": False, "state": DISABLED}
        return {
            "configured": True,
            "url": display_url(self.config.url),
            "worker_id": self._worker_id or None,
            "heartbeat_seconds": self.config.heartbeat_seconds,
            **self.state.health(),
        }

    # --- the task ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                delay = await self.beat_once()
            except Exception:
                # A bug here must not end the heartbeat for the rest of the process's life.
                logger.exception("controller: heartbeat failed unexpectedly")
                delay = self._failed("internal error")
            await asyncio.sleep(delay)

    async def beat_once(self) -> float:
        """One registration or heartbeat; returns how long to wait before the next."""
        try:
            snapshot = await self._snapshot()
            current_hash = models_hash(snapshot.models)
            with_models = self.state.include_models(current_hash)
            body = heartbeat_payload(snapshot, include_models=with_models, sent_at=_now())
        except Exception as exc:
            logger.exception("controller: could not gather the heartbeat")
            return self._failed(f"could not gather the heartbeat: {type(exc).__name__}")
        self._worker_id = snapshot.worker_id
        self.state.last_attempt = body["sent_at"]
        try:
            status, answer = await self._put(snapshot.worker_id, body)
        except (httpx.HTTPError, TimeoutError) as exc:
            return self._failed(_describe(exc, self.config.timeout))
        if 200 <= status < 300:
            return self._succeeded(current_hash, with_models)
        code = _error_code(answer)
        if status in (404, 409) and not with_models:
            # The controller lost us (restarted, or evicted us) or lacks the list the hash names.
            logger.info(
                "controller: %s answered %s (%s); registering %s again", self._shown, status, code, self._worker_id
            )
            return self.state.forgotten()
        hint = ""
        if status == 404:
            hint = " (is ELDRIC_CONTROLLER_WORKERS_PATH right?)"
        elif status in (401, 403):
            hint = " (check ELDRIC_CLUSTER_SECRET)"
        return self._failed(f"HTTP {status}{f' {code}' if code else ''}: {_error_message(answer)}{hint}")

    async def _snapshot(self) -> WorkerSnapshot:
        source = self.source
        try:
            system = await asyncio.to_thread(self._sampler.sample)
        except RuntimeError:  # the executor is shutting down
            system = SystemFigures()
        return WorkerSnapshot(
            worker_id=source.worker_id(),
            version=self.version,
            instance=self.instance,
            url=self.address.url,
            host=self.address.host,
            port=self.address.port,
            uptime_seconds=source.uptime_seconds(),
            status=source.status(),
            active_connections=source.active_connections(),
            requests_in_flight=source.inflight(),
            last_minute=source.last_minute(),
            system=system,
            backends=source.backends(),
            models=source.models(),
            license_tier=source.license_tier(),
        )

    async def _put(self, worker_id: str, body: dict) -> tuple[int, bytes]:
        assert self._http is not None
        content = json.dumps(body, separators=(",", ":")).encode()
        # httpx's timeouts bound each read; this bounds the whole exchange, so a controller
        # that trickles bytes cannot hold the task either.
        async with asyncio.timeout(self.config.timeout):
            request = self._http.build_request(
                "PUT",
                worker_path(self.config.workers_path, worker_id),
                content=content,
                headers={"content-type": "application/json"},
            )
            response = await self._http.send(request, stream=True)
            try:
                return response.status_code, await _read_capped(response)
            finally:
                await response.aclose()

    async def _deregister(self, http: httpx.AsyncClient) -> None:
        path = worker_path(self.config.workers_path, self._worker_id)
        try:
            async with asyncio.timeout(self.config.deregister_timeout):
                response = await http.delete(path)
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.warning(
                "controller: could not deregister %s from %s: %s",
                self._worker_id,
                self._shown,
                _describe(exc, self.config.deregister_timeout),
            )
            return
        if response.status_code < 300 or response.status_code == 404:
            self.state.deregistered()
            logger.info("controller: deregistered %s from %s", self._worker_id, self._shown)
        else:
            logger.warning("controller: deregistering %s: HTTP %s", self._worker_id, response.status_code)

    # --- outcomes ----------------------------------------------------------------------------
    @property
    def _shown(self) -> str:
        return display_url(self.config.url)

    def _succeeded(self, current_hash: str, with_models: bool) -> float:
        failures = self.state.consecutive_failures
        first = self.state.last_success is None
        delay = self.state.succeeded(at=_now(), models_hash=current_hash, with_models=with_models)
        if first:
            logger.info("controller: registered %s with %s", self._worker_id, self._shown)
        elif failures:
            logger.warning("controller: %s reachable again after %d failed attempts", self._shown, failures)
        return delay

    def _failed(self, error: str) -> float:
        delay = self.state.failed(at=_now(), error=error)
        failures = self.state.consecutive_failures
        # Once when it starts, then at every doubling: a controller away for hours logs a few lines.
        if failures & (failures - 1) == 0:
            logger.warning(
                "controller: %s: %s (%d consecutive failures; next try in %.1fs)", self._shown, error, failures, delay
            )
        return delay

    @property
    def deregistered(self) -> bool:
        return self.state.state == DEREGISTERED


def shown_url(url: str) -> str:
    """``display_url``, or "none" for no URL: for log lines naming an old and a new URL."""
    return display_url(url) if url else "none"


def controller_health(client: ControllerClient | None) -> dict:
    """``/health``'s ``controller`` entry, also when no client was built."""
    if client is None:
        return {"configured": False, "state": DISABLED}
    return client.controller_health()


async def _read_capped(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)[:MAX_ANSWER_BYTES]


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    return type(exc).__name__


def _error_payload(answer: bytes) -> dict:
    try:
        error = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _error_code(answer: bytes) -> str:
    code = _error_payload(answer).get("code")
    return str(code)[:64] if code else ""


def _error_message(answer: bytes) -> str:
    message = _error_payload(answer).get("message")
    return str(message)[:200] if message else "no error message"
