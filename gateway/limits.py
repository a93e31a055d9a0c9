"""Rate limits (RPM, TPM, requests in flight) and budgets, per client key and per organisation.

A request that passes ``Limiter.acquire`` holds a ``Ticket``: one request counted against each
limited scope, its token estimate reserved, a concurrency slot taken. ``Gateway.finish`` hands
the ticket back (``Limiter.release``) however the request ended: the slot is freed, the token
reservation settles to the real usage and the budget is charged the real cost.

Windows: a scope's minute starts with its first request and lasts 60 s (Redis ``PEXPIRE``);
within it at most ``rpm`` requests and ``tpm`` tokens pass, exactly, across every process that
shares the store. Budgets count per UTC day or month.

Where the counters live is a ``LimitStore``: ``gateway.limits_redis.RedisLimitStore`` (shared,
atomic Lua scripts) or ``gateway.limits_memory.MemoryLimitStore`` (this process only).
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from backends.providers.base import OpenAIError
from orgs.access import LimitSpec

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000
# Requests, tokens, concurrency, budget: why a request was refused.
REQUESTS, TOKENS, CONCURRENCY, BUDGET = "requests", "tokens", "concurrency", "budget"
# Distinct unpriced models logged once each; past it they are no longer named.
MAX_UNPRICED_LOGGED = 1000
# Key and organisation pairs whose scopes are kept between requests.
MAX_CACHED_SCOPES = 10_000


class StoreUnavailable(Exception):
    """The shared store did not answer in time, or not at all."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One limited subject: ``key:<id>`` or ``org:<slug>``, with its limits and budget period."""

    name: str
    limits: LimitSpec
    # The budget's counter name for the current period, and when that period ends (Unix ms).
    period: str = ""
    period_end_ms: int = 0


@dataclass(slots=True)
class ScopeState:
    """What a store reports for one scope (counts include this request when it passed)."""

    requests: int
    tokens: int
    window_ms: int  # until the scope's minute window resets
    spent: float = 0.0


@dataclass(slots=True)
class Verdict:
    allowed: bool
    states: tuple[ScopeState, ...]
    # When refused: the scope at fault and why.
    denied_scope: int = -1
    denied_reason: str = ""


@dataclass(slots=True)
class Settlement:
    scopes: tuple[Scope, ...]
    request_id: str
    token_delta: int
    cost_usd: float


class LimitStore(Protocol):
    kind: str  # "redis" or "memory"

    async def acquire(self, scopes: tuple[Scope, ...], request_id: str, estimate: int) -> Verdict: ...

    def settle(self, settlement: Settlement) -> None:
        """Queue the end of a request; must not block (the store sends it in the background)."""

    async def settle_now(self, settlement: Settlement) -> None:
        """Record the end of a request before returning (queued instead when the store fails)."""

    async def spent(self, scope: Scope) -> float:
        """USD the scope spent in its current budget period (``StoreUnavailable`` if unknown)."""

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Ticket:
    scopes: tuple[Scope, ...]
    request_id: str
    estimate: int
    # False when the store was down and the request passed uncounted (fail open).
    counted: bool


def period_of(period: str, now: float) -> tuple[str, int]:
    """The budget counter's suffix for ``now`` and the period's end (Unix ms), UTC."""
    t = time.gmtime(now)
    if period == "day":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        return f"d{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}", (start + 86400) * 1000
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return f"m{t.tm_year:04d}{t.tm_mon:02d}", calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def is_limited(spec: LimitSpec) -> bool:
    return (
        spec.rpm is not None or spec.tpm is not None or spec.max_concurrent is not None or spec.budget_usd is not None
    )


def duration_text(ms: int) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6.5s``, ``6m0s``, ``1h2m3s``."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


def rate_headers(scopes: tuple[Scope, ...], states: tuple[ScopeState, ...]) -> list[tuple[bytes, bytes]]:
    """``x-ratelimit-*`` for the tightest scope of each kind (the one with the least left)."""
    requests = tokens = None
    for scope, state in zip(scopes, states, strict=False):
        limits = scope.limits
        if limits.rpm is not None:
            left = max(0, limits.rpm - state.requests)
            if requests is None or left < requests[1]:
                requests = (limits.rpm, left, state.window_ms)
        if limits.tpm is not None:
            left = max(0, limits.tpm - state.tokens)
            if tokens is None or left < tokens[1]:
                tokens = (limits.tpm, left, state.window_ms)
    headers: list[tuple[bytes, bytes]] = []
    if requests is not None:
        headers += (
            (b"x-ratelimit-limit-requests", b"%d" % requests[0]),
            (b"x-ratelimit-remaining-requests", b"%d" % requests[1]),
            (b"x-ratelimit-reset-requests", duration_text(requests[2]).encode()),
        )
    if tokens is not None:
        headers += (
            (b"x-ratelimit-limit-tokens", b"%d" % tokens[0]),
            (b"x-ratelimit-remaining-tokens", b"%d" % tokens[1]),
            (b"x-ratelimit-reset-tokens", duration_text(tokens[2]).encode()),
        )
    return headers


def _who(scope: Scope) -> str:
    return "this key" if scope.name.startswith("key:") else "this organisation"


def refusal(scope: Scope, state: ScopeState, reason: str, estimate: int) -> OpenAIError:
    """The 429 in OpenAI's words."""
    limits = scope.limits
    if reason == REQUESTS:
        return OpenAIError(
            429,
            f"Rate limit reached for {_who(scope)}: {limits.rpm} requests per minute. "
            f"Try again in {duration_text(state.window_ms)}.",
            type="requests",
            code="rate_limit_exceeded",
            retry_after=state.window_ms / 1000,
        )
    if reason == TOKENS:
        return OpenAIError(
            429,
            f"Rate limit reached for {_who(scope)}: {limits.tpm} tokens per minute "
            f"(used {state.tokens}, requested {estimate}). Try again in {duration_text(state.window_ms)}.",
            type="tokens",
            code="rate_limit_exceeded",
            retry_after=state.window_ms / 1000,
        )
    if reason == CONCURRENCY:
        return OpenAIError(
            429,
            f"Too many requests in flight for {_who(scope)} (at most {limits.max_concurrent} at once).",
            type="requests",
            code="rate_limit_exceeded",
            retry_after=1,
        )
    period = "today" if limits.budget_period == "day" else "this month"
    return OpenAIError(
        429,
        f"You exceeded your current quota: {_who(scope)} spent ${state.spent:.4f} of its "
        f"${limits.budget_usd:.2f} budget {period} (UTC).",
        type="insufficient_quota",
        code="insufficient_quota",
        retry_after=max(1.0, (scope.period_end_ms - time.time() * 1000) / 1000),
    )


UNAVAILABLE = OpenAIError(
    503,
    "Rate limits cannot be checked right now (the limits store is unreachable); retry shortly.",
    type="service_unavailable",
    code="limits_unavailable",
    retry_after=1,
)


class Limiter:
    """The gateway's rate limits and budgets; built once at start-up."""

    def __init__(self, store: LimitStore, *, fail_open: bool = True, retry_seconds: float = 1.0) -> None:
        self.store = store
        self.fail_open = fail_open
        self.retry_seconds = retry_seconds
        self._held: dict[object, Ticket] = {}
        self._down_until = 0.0
        self._down_since: float | None = None
        self._last_error = ""
        self._last_warning = 0.0
        self._unpriced_logged: set[str] = set()
        # (id(key record), id(org record)) -> (key, org, scopes, valid until Unix ms or 0)
        self._scopes: dict[tuple[int, int], tuple[object, object, tuple[Scope, ...], int]] = {}
        # id(scopes) -> (scopes, their states at the last count, when): for uncounted answers.
        self._last_seen: dict[int, tuple[tuple[Scope, ...], tuple[ScopeState, ...], float]] = {}
        # What a finished request cost (set by the gateway: its price book).
        self.cost_of = lambda ctx: ctx.cost_usd

    # --- the request's start ---------------------------------------------------------------
    def scopes_for(self, key, organisation) -> tuple[Scope, ...]:
        """The limited scopes of a request: its key's and its organisation's (records from the
        access snapshot); empty when neither has any limit. The same records give the same
        tuple (until a budget period ends), so stores can cache what they derive from it."""
        cache_key = (id(key), id(organisation))
        cached = self._scopes.get(cache_key)
        if (
            cached is not None
            and cached[0] is key
            and cached[1] is organisation
            and (not cached[3] or time.time() * 1000 < cached[3])
        ):
            return cached[2]
        scopes = []
        now = time.time()
        for name, record in (("key", key), ("org", organisation)):
            if record is None or not is_limited(record.limits):
                continue
            ident = record.id if name == "key" else record.slug
            if record.limits.budget_usd is not None:
                period, end_ms = period_of(record.limits.budget_period, now)
                scopes.append(Scope(f"{name}:{ident}", record.limits, period, end_ms))
            else:
                scopes.append(Scope(f"{name}:{ident}", record.limits))
        result = tuple(scopes)
        if len(self._scopes) >= MAX_CACHED_SCOPES:
            self._scopes.clear()
        valid_until = min((s.period_end_ms for s in result if s.period_end_ms), default=0)
        self._scopes[cache_key] = (key, organisation, result, valid_until)
        return result

    async def acquire(
        self, ctx, scopes: tuple[Scope, ...], estimate: int
    ) -> tuple[OpenAIError | None, list[tuple[bytes, bytes]]]:
        """Count the request; the error to answer with when it may not go on, and the
        ``x-ratelimit-*`` headers for its response either way."""
        if time.monotonic() < self._down_until:
            return self._store_down(ctx, scopes, estimate, None)
        try:
            verdict = await self.store.acquire(scopes, ctx.request_id, estimate)
        except StoreUnavailable as exc:
            return self._store_down(ctx, scopes, estimate, exc)
        if self._down_since is not None:
            logger.warning("limits store %s reachable again; limits enforced", self.store.kind)
            self._down_since = None
        headers = rate_headers(scopes, verdict.states)
        if len(self._last_seen) >= MAX_CACHED_SCOPES:
            self._last_seen.clear()
        # The tuple is kept in the value, so its id cannot be reused while the entry lives.
        self._last_seen[id(scopes)] = (scopes, verdict.states, time.monotonic())
        if not verdict.allowed:
            index = verdict.denied_scope
            return refusal(scopes[index], verdict.states[index], verdict.denied_reason, estimate), headers
        self._held[ctx] = Ticket(scopes, ctx.request_id, estimate, counted=True)
        return None, headers

    def known_headers(self, scopes: tuple[Scope, ...]) -> list[tuple[bytes, bytes]]:
        """``x-ratelimit-*`` for a response that is not counted (a malformed request, a model
        the key may not use): the counts this process last saw for these scopes, aged by the
        time since, with no store round trip. A window that has ended since shows in full."""
        seen = self._last_seen.get(id(scopes))
        if seen is None or seen[0] is not scopes:
            states = tuple(ScopeState(0, 0, WINDOW_MS) for _ in scopes)
        else:
            elapsed_ms = int((time.monotonic() - seen[2]) * 1000)
            states = tuple(
                ScopeState(0, 0, WINDOW_MS)
                if elapsed_ms >= state.window_ms
                else ScopeState(state.requests, state.tokens, state.window_ms - elapsed_ms)
                for state in seen[1]
            )
        return rate_headers(scopes, states)

    def _store_down(self, ctx, scopes, estimate, exc) -> tuple[OpenAIError | None, list]:
        now = time.monotonic()
        if exc is not None:
            # The call may have reached Redis before it failed: give back any slot it took.
            if any(s.limits.max_concurrent is not None for s in scopes):
                self.store.settle(Settlement(scopes, ctx.request_id, 0, 0.0))
            self._down_until = now + self.retry_seconds
            self._last_error = str(exc) or type(exc).__name__
            if self._down_since is None:
                self._down_since = time.time()
        if now - self._last_warning >= 60:
            self._last_warning = now
            logger.warning(
                "limits store %s unreachable (%s): requests are %s until it answers",
                self.store.kind,
                self._last_error,
                "let through unlimited (ELDRIC_LIMITS_FAIL_OPEN)" if self.fail_open else "refused with 503",
            )
        if not self.fail_open:
            return UNAVAILABLE, []
        self._held[ctx] = Ticket(scopes, ctx.request_id, estimate, counted=False)
        return None, []

    # --- the request's end -----------------------------------------------------------------
    def release(self, ctx) -> None:
        """Called by ``Gateway.finish`` for every request, after its cost is known."""
        settlement = self._settlement(ctx, ctx.cost_usd)
        if settlement is not None:
            self.store.settle(settlement)

    def charges_before_end(self, ctx) -> bool:
        """Whether the request's end should be recorded before its last byte goes out: when a
        budget is at stake and the cost is known by then (not for streams, whose usage arrives
        with their last event)."""
        ticket = self._held.get(ctx)
        return (
            ticket is not None
            and ticket.counted
            and not ctx.stream
            and any(s.limits.budget_usd is not None for s in ticket.scopes)
        )

    async def release_before_end(self, ctx) -> None:
        """``Responder.before_end`` for a budgeted request: charge it, then let the answer end.
        Shielded: a client that leaves meanwhile does not stop the charge."""
        settlement = self._settlement(ctx, self.cost_of(ctx))
        if settlement is not None:
            await asyncio.shield(self.store.settle_now(settlement))

    def _settlement(self, ctx, cost) -> Settlement | None:
        ticket = self._held.pop(ctx, None)
        if ticket is None or not ticket.counted:
            return None
        usage = ctx.usage
        if usage is not None:
            delta = usage.total_tokens - ticket.estimate
        elif ctx.first_upstream_byte is None:
            delta = -ticket.estimate  # no upstream answered: nothing was generated
        else:
            delta = 0  # answered, usage unknown: the estimate stands
        if cost is None:
            cost = 0.0
            if usage is not None and any(s.limits.budget_usd is not None for s in ticket.scopes):
                self._unpriced(ctx.model)
        return Settlement(ticket.scopes, ticket.request_id, delta, float(cost))

    def _unpriced(self, model: str) -> None:
        if model not in self._unpriced_logged and len(self._unpriced_logged) < MAX_UNPRICED_LOGGED:
            self._unpriced_logged.add(model)
            logger.warning("model %r has no price: its requests are not charged to budgets", model[:100])

    async def budgets(self, key, organisation) -> list[dict]:
        """The budgets that apply to a caller (its key's, its organisation's) and what is left of
        each in the current period: for ``GET /v1/usage``. ``spent_usd`` is None when the store
        cannot be read."""
        report = []
        for scope in self.scopes_for(key, organisation):
            limits = scope.limits
            if limits.budget_usd is None:
                continue
            try:
                spent = await self.store.spent(scope)
            except StoreUnavailable:
                spent = None
            report.append(
                {
                    "scope": "key" if scope.name.startswith("key:") else "organisation",
                    "budget_usd": limits.budget_usd,
                    "period": limits.budget_period,
                    "period_ends_at": scope.period_end_ms / 1000,
                    "spent_usd": spent,
                    "remaining_usd": None if spent is None else max(0.0, limits.budget_usd - spent),
                }
            )
        return report

    @property
    def held(self) -> int:
        return len(self._held)

    def health(self) -> dict:
        down = self._down_since is not None
        return {
            "store": self.store.kind,
            "shared": self.store.kind == "redis",
            "status": "unavailable" if down else "ok",
            "fail_open": self.fail_open,
            **({"unavailable_since": self._down_since, "error": self._last_error} if down else {}),
        }

    async def aclose(self) -> None:
        await self.store.aclose()


def estimate_tokens(payload: dict, body: bytes) -> int:
    """The tokens a request may use: its completion cap when sent, plus its size in bytes / 4."""
    cap = payload.get("max_completion_tokens")
    if cap is None:
        cap = payload.get("max_tokens")
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        cap = 0
    return min(cap, 1 << 40) + len(body) // 4


def limiter_for(config) -> Limiter:
    """The limiter a ``GatewayConfig`` asks for: Redis when ``limits_redis_url`` is set."""
    if config.limits_redis_url:
        from gateway.limits_redis import RedisLimitStore

        store = RedisLimitStore(
            config.limits_redis_url,
            timeout=config.limits_redis_timeout,
            slot_lease_seconds=config.limits_slot_lease_seconds,
            prefix=config.limits_redis_prefix,
        )
    else:
        from gateway.limits_memory import MemoryLimitStore

        store = MemoryLimitStore()
    return Limiter(store, fail_open=config.limits_fail_open, retry_seconds=config.limits_retry_seconds)
