"""Limit counters in this process's memory: used when there is no Redis.

Exact for one process; with several processes each counts on its own (documented as "per
process"). Runs on the event loop only, so plain dicts need no lock.
"""

from __future__ import annotations

import time

from gateway.limits import BUDGET, CONCURRENCY, REQUESTS, TOKENS, WINDOW_MS, Scope, ScopeState, Settlement, Verdict


class _Window:
    __slots__ = ("requests", "started_ms", "tokens")

    def __init__(self, now_ms: int) -> None:
        self.started_ms = now_ms
        self.requests = 0
        self.tokens = 0


class MemoryLimitStore:
    kind = "memory"

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._slots: dict[str, set[str]] = {}
        # scope -> (period, spent)
        self._budgets: dict[str, tuple[str, float]] = {}

    def _window(self, name: str, now_ms: int) -> _Window:
        window = self._windows.get(name)
        if window is None or now_ms - window.started_ms >= WINDOW_MS:
            window = self._windows[name] = _Window(now_ms)
        return window

    def _spent(self, scope: Scope) -> float:
        period, spent = self._budgets.get(scope.name, ("", 0.0))
        return spent if period == scope.period else 0.0

    async def acquire(self, scopes: tuple[Scope, ...], request_id: str, estimate: int) -> Verdict:
        now_ms = int(self._clock() * 1000)
        windows = [self._window(scope.name, now_ms) for scope in scopes]
        denied, reason = -1, ""
        for index, (scope, window) in enumerate(zip(scopes, windows, strict=True)):
            reason = _refused(scope, window, len(self._slots.get(scope.name, ())), self._spent(scope), estimate)
            if reason:
                denied = index
                break
        if not reason:
            for scope, window in zip(scopes, windows, strict=True):
                window.requests += 1
                window.tokens += estimate
                if scope.limits.max_concurrent is not None:
                    self._slots.setdefault(scope.name, set()).add(request_id)
        states = tuple(
            ScopeState(w.requests, w.tokens, w.started_ms + WINDOW_MS - now_ms, self._spent(s))
            for s, w in zip(scopes, windows, strict=True)
        )
        return Verdict(not reason, states, denied, reason)

    def settle(self, settlement: Settlement) -> None:
        now_ms = int(self._clock() * 1000)
        for scope in settlement.scopes:
            slots = self._slots.get(scope.name)
            if slots is not None:
                slots.discard(settlement.request_id)
            if settlement.token_delta:
                window = self._windows.get(scope.name)
                if window is not None and now_ms - window.started_ms < WINDOW_MS:
                    window.tokens = max(0, window.tokens + settlement.token_delta)
            if settlement.cost_usd > 0 and scope.limits.budget_usd is not None:
                self._budgets[scope.name] = (scope.period, self._spent(scope) + settlement.cost_usd)

    async def settle_now(self, settlement: Settlement) -> None:
        self.settle(settlement)

    idle = True  # request ends apply at once

    async def spent(self, scope: Scope) -> float:
        return self._spent(scope)

    async def aclose(self) -> None:
        return None


def _refused(scope: Scope, window: _Window, in_flight: int, spent: float, estimate: int) -> str:
    limits = scope.limits
    if limits.max_concurrent is not None and in_flight >= limits.max_concurrent:
        return CONCURRENCY
    if limits.rpm is not None and window.requests >= limits.rpm:
        return REQUESTS
    if limits.tpm is not None and window.tokens + estimate > limits.tpm:
        return TOKENS
    if limits.budget_usd is not None and spent >= limits.budget_usd:
        return BUDGET
    return ""
