"""The gateway: one object built at start-up that owns everything a request needs.

It holds the routing snapshot source, the circuit breakers, the upstream HTTP clients and
the observers. Each request gets a ``RequestContext`` when it arrives (``begin``) and hands
it to every observer when it ends (``finish``), however it ends: answered, refused, failed,
abandoned by the client or cut short by a shutdown.

Observers are called on the event loop right after the request's last byte, never before:
``request_finished(ctx)`` must be quick and must not block (buffer, then do the work on
another thread). An observer that raises is logged and skipped; the request is long done.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from typing import Protocol

from backends.snapshot import RoutingSnapshot
from gateway.breaker import BreakerBoard
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.http import UpstreamClients
from gateway.limits import Limiter, limiter_for
from gateway.listing_bodies import ListingBodies
from gateway.messages_view import MessagesIngress
from gateway.responses_view import ResponsesIngress
from gateway.snapshot import SnapshotSource

logger = logging.getLogger(__name__)

# A client's own request id is kept when it is a reasonable token; anything else is replaced.
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class RequestObserver(Protocol):
    def request_finished(self, ctx: RequestContext) -> None: ...


class Gateway:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        snapshots: SnapshotSource | None = None,
        breakers: BreakerBoard | None = None,
        clients: UpstreamClients | None = None,
        observers: list[RequestObserver] | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.config = config
        self.snapshots = snapshots or SnapshotSource()
        self.breakers = breakers or BreakerBoard(
            failure_threshold=config.breaker_failures,
            cooldown=config.breaker_cooldown,
            # A trial that nobody released lapses after the longest a request may take.
            lease_seconds=config.request_timeout + config.connect_timeout,
        )
        self.clients = clients or UpstreamClients(config)
        # Rate limits and budgets; a request that passed holds a ticket until ``finish``.
        self.limiter = limiter or limiter_for(config)
        self.limiter.cost_of = self.cost_of
        # /v1/models for keys limited to some models, and gzipped, computed off the loop.
        self.listings = ListingBodies(gzip_min_bytes=config.gzip_min_bytes)
        self.observers: list[RequestObserver] = list(observers or [])
        # The accounting observers (traffic, usage): started with the gateway and flushed when
        # it closes; each is in ``observers`` too. ``recorder`` is the traffic one.
        self.recorder = None
        self.recorders: list = []
        self.started_at = time.monotonic()
        self._started = False
        self._draining = False
        self._inflight: dict[RequestContext, asyncio.Task | None] = {}
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = itertools.count()
        # The controller client (``eldric_cloud.controller``), set by the server's start-up
        # when registration is configured: started on the serving loop, closed at the drain.
        self.controller = None
        # Breaker state and change notices shared through Redis (``gateway.shared_state``),
        # when configured: started on the serving loop, stopped at close.
        self.shared_state = None
        self._deregistering: asyncio.Future | None = None
        # The Anthropic Messages ingress (``/v1/messages``) and what it has logged.
        self.messages = MessagesIngress()
        # The OpenAI Responses ingress (``/v1/responses``); its store is set by ``from_settings``.
        self.responses = ResponsesIngress()

    @classmethod
    def from_settings(cls) -> Gateway:
        from django.conf import settings

        from traffic.recorder import TrafficRecorder
        from usage.recorder import UsageRecorder

        gateway = cls(config=GatewayConfig.from_settings())
        gateway.add_recorder(
            TrafficRecorder(
                instance=settings.ELDRIC_INSTANCE,
                flush_seconds=settings.ELDRIC_TRAFFIC_FLUSH_SECONDS,
                live_state=gateway.backend_live_states,
            )
        )
        gateway.add_recorder(UsageRecorder.from_settings())
        from responses_store.store import ResponseStore

        store = ResponseStore.from_settings()
        if store.enabled:
            gateway.responses.store = store
            gateway.add_recorder(store)
        from gateway.shared_state import SharedState

        gateway.shared_state = SharedState.from_settings(board=gateway.breakers, snapshots=gateway.snapshots)
        return gateway

    def add_recorder(self, recorder) -> None:
        """An accounting observer: started and stopped with the gateway."""
        if self.recorder is None:
            self.recorder = recorder
        self.recorders.append(recorder)
        self.observers.append(recorder)

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Build the routing snapshot, start the poller and the recorder. Idempotent; runs on
        the server's start-up path, never at import."""
        if self._started:
            return
        self.snapshots.start(self.config.snapshot_poll_seconds)
        for recorder in self.recorders:
            recorder.start()
        self._started = True

    def serving_started(self) -> None:
        """On the serving event loop, once the listener is open: what needs that loop."""
        if self.shared_state is not None:
            self.shared_state.start()
        if self.controller is not None:
            self.controller.start()

    @property
    def ready(self) -> bool:
        return self._started and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_drain(self) -> None:
        if not self._draining:
            self._draining = True
            logger.info("draining: %d requests in flight", len(self._inflight))
            if self.controller is not None:
                # Deregistered as the drain begins, so the controller sends no new work here.
                self._deregistering = asyncio.ensure_future(self.controller.aclose())

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._inflight:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def abort_streams(self) -> None:
        """End everything still in flight: streams with an error event and ``[DONE]``,
        requests still waiting for an upstream with a 503 (see ``GatewayApplication``)."""
        for ctx, task in list(self._inflight.items()):
            if task is not None and not task.done():
                ctx.aborted = True
                task.cancel()

    async def aclose(self) -> None:
        """Deregister, stop the poller, flush accounting, close the upstream clients."""
        if self._deregistering is not None:
            await asyncio.gather(self._deregistering, return_exceptions=True)
        if self.controller is not None:
            await self.controller.aclose()
        if self.shared_state is not None:
            await self.shared_state.aclose()
        self.snapshots.stop()
        for recorder in self.recorders:
            await asyncio.to_thread(recorder.stop)
        await self.clients.aclose()
        await self.limiter.aclose()
        self._started = False

    # --- requests ----------------------------------------------------------------------
    def begin(self, scope, dialect: str, client_request_id: bytes | None) -> RequestContext:
        request_id = ""
        if client_request_id is not None:
            candidate = client_request_id.decode("latin-1")
            if CLIENT_REQUEST_ID.fullmatch(candidate):
                request_id = candidate
        ctx = RequestContext(
            request_id=request_id or self._request_id(),
            dialect=dialect,
            method=scope["method"],
            path=scope["path"],
        )
        self._inflight[ctx] = asyncio.current_task()
        return ctx

    def _request_id(self) -> str:
        # Unique, not secret: a random prefix per gateway and a counter, which costs no system
        # call per request (os.urandom did, about 10 µs under load).
        return f"req_{self._id_prefix}{next(self._id_counter):012x}"

    def finish(self, ctx: RequestContext) -> None:
        ctx.done = time.monotonic()
        self._inflight.pop(ctx, None)
        if ctx.usage is not None:
            ctx.cost_usd = self.cost_of(ctx)
        # However the request ended: its concurrency slot is freed, its tokens and cost settle.
        try:
            self.limiter.release(ctx)
        except Exception:
            logger.exception("releasing the limits of request %s failed", ctx.request_id)
        if self.observers:
            asyncio.get_running_loop().call_soon(self._notify, ctx)

    def cost_of(self, ctx: RequestContext) -> float | None:
        """What the request cost by the price book (None: unpriced, or no usage yet)."""
        if ctx.usage is None:
            return None
        snapshots = self.snapshots
        return snapshots.prices.cost(ctx.model, snapshots.current.backends.get(ctx.backend), ctx.usage)

    def _notify(self, ctx: RequestContext) -> None:
        for observer in self.observers:
            try:
                observer.request_finished(ctx)
            except Exception:
                logger.exception("request observer %s failed", type(observer).__name__)

    def routing_for(self, ctx: RequestContext) -> RoutingSnapshot:
        """The routing snapshot as the caller's organisation sees it: only the backends it may use."""
        return self.snapshots.current.for_org(ctx.principal.organisation)

    async def models_body_for(self, routing: RoutingSnapshot, patterns: tuple[str, ...]) -> bytes:
        """``/v1/models`` for a key limited to some models: only those it may use."""
        if not patterns:
            return routing.models_body
        from orgs.keys import model_allowed

        return await self.listings.filtered(routing.models_body, patterns, model_allowed)

    # --- live state for observers, /health and the heartbeat ---------------------------
    def backend_live_states(self) -> dict[str, dict]:
        """Per configured backend: this process's circuit state and Retry-After block."""
        now = time.time()
        states = {}
        for route in self.snapshots.current.backends.values():
            blocked = self.breakers.blocked_for(route.name)
            states[route.name] = {
                "circuit": self.breakers.state(route.name, route.healthy_probes),
                "rate_limited_until": now + blocked if blocked else None,
            }
        return states
