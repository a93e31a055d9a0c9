"""Limit counters in Redis, shared by every gateway process: exact across instances.

One Lua script per request start checks every limited scope and, only when all pass, counts
the request in each (atomic: Redis runs a script alone), in one round trip. A request's end
(slot release, token settle, budget charge) is a second script, written to the connection when
the request finishes without waiting for its reply. Both go over ``gateway.limits_resp``, one
pipelined connection per process.

Keys, per scope (``key:<id>`` or ``org:<slug>``), under the prefix (``eld:lim:`` by default):
  ``<scope>:w`` hash {r: requests, t: tokens}, expiring 60 s after the window's first request;
  ``<scope>:c`` sorted set of request ids in flight, scored by when their slot lapses;
  ``<scope>:b:<period>`` the USD spent in a UTC day (``d20261201``) or month (``m202612``),
  expiring a day after the period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gateway.limits import WINDOW_MS, Scope, ScopeState, Settlement, StoreUnavailable, Verdict
from gateway.limits_resp import RedisReplyError, RespClient, bulk, pack_head

logger = logging.getLogger(__name__)


# KEYS: per scope w, c, b. ARGV: n, lease ms, window ms, then per scope rpm, tpm,
# max_concurrent (-1: none), budget ("": none); then the request id and its token estimate
# (last, so that the rest is packed once per scope set).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n, lease, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rid, est = ARGV[4 + n * 4], tonumber(ARGV[5 + n * 4])
local states, fresh = {}, {}
local denied, reason = -1, ''
for i = 0, n - 1 do
  local w, c, b = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local base = 4 + i * 4
  local rpm, tpm, maxc = tonumber(ARGV[base]), tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local budget = ARGV[base + 3]
  local v = redis.call('HMGET', w, 'r', 't')
  local reqs, toks = tonumber(v[1] or '0'), tonumber(v[2] or '0')
  local ttl = redis.call('PTTL', w)
  fresh[i + 1] = ttl < 0
  if ttl == -2 then reqs, toks = 0, 0 end
  if ttl < 0 then ttl = window end
  local inflight = 0
  if maxc >= 0 then
    redis.call('ZREMRANGEBYSCORE', c, '-inf', now)
    inflight = redis.call('ZCARD', c)
  end
  local spent = '0'
  if budget ~= '' then spent = redis.call('GET', b) or '0' end
  states[i + 1] = {reqs, toks, ttl, spent}
  if reason == '' then
    if maxc >= 0 and inflight >= maxc then reason = 'concurrency'
    elseif rpm >= 0 and reqs >= rpm then reason = 'requests'
    elseif tpm >= 0 and toks + est > tpm then reason = 'tokens'
    elseif budget ~= '' and tonumber(spent) >= tonumber(budget) then reason = 'budget' end
    if reason ~= '' then denied = i end
  end
end
local out = {reason == '' and 1 or 0, denied, reason}
for i = 0, n - 1 do
  local s = states[i + 1]
  if reason == '' then
    local w, c = KEYS[i * 3 + 1], KEYS[i * 3 + 2]
    s[1] = redis.call('HINCRBY', w, 'r', 1)
    s[2] = redis.call('HINCRBY', w, 't', est)
    if fresh[i + 1] then redis.call('PEXPIRE', w, window) end
    if tonumber(ARGV[4 + i * 4 + 2]) >= 0 then
      redis.call('ZADD', c, now + lease, rid)
      redis.call('PEXPIRE', c, lease)
    end
  end
  table.insert(out, s[1]); table.insert(out, s[2]); table.insert(out, s[3]); table.insert(out, s[4])
end
return out
"""

# KEYS: per scope w, c, b. ARGV: n, then per scope has-slot (0/1) and the budget period's end
# in Unix ms (0: no budget); then the request id, its token delta and its cost.
RELEASE = """
local n = tonumber(ARGV[1])
local rid, delta, cost_text = ARGV[2 + n * 2], tonumber(ARGV[3 + n * 2]), ARGV[4 + n * 2]
local cost = tonumber(cost_text)
for i = 0, n - 1 do
  local w, c, b = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  if ARGV[2 + i * 2] == '1' then redis.call('ZREM', c, rid) end
  if delta ~= 0 and redis.call('EXISTS', w) == 1 then
    if redis.call('HINCRBY', w, 't', delta) < 0 then redis.call('HSET', w, 't', 0) end
  end
  local period_end = tonumber(ARGV[3 + i * 2])
  if cost > 0 and period_end > 0 then
    redis.call('INCRBYFLOAT', b, cost_text)
    redis.call('PEXPIREAT', b, period_end + 86400000)
  end
end
return 1
"""


def _keys(prefix: str, scopes: tuple[Scope, ...]) -> list[str]:
    keys = []
    for scope in scopes:
        base = prefix + scope.name
        keys += (base + ":w", base + ":c", f"{base}:b:{scope.period or '-'}")
    return keys


def _limit(value) -> int:
    return -1 if value is None else value


# How many scope sets keep their packed commands (one per key and organisation pair in use).
MAX_PACKED = 10_000


class RedisLimitStore:
    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        slot_lease_seconds: float = 900.0,
        prefix: str = "eld:lim:",
    ) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.lease_ms = int(slot_lease_seconds * 1000)
        self.client = RespClient(url, timeout=timeout, scripts={"acquire": ACQUIRE, "release": RELEASE})
        # Request ends that found no open connection: sent once one is open again.
        self._pending: list[Settlement] = []
        # id(scopes) -> (scopes, acquire command head, release command head): the parts of the
        # two commands that do not change between a key's requests, packed once.
        self._packed: dict[int, tuple[tuple[Scope, ...], bytes, bytes]] = {}
        self._flusher: asyncio.Task | None = None
        self._last_loss_warning = 0.0

    def _heads(self, scopes: tuple[Scope, ...]) -> tuple[bytes, bytes]:
        cached = self._packed.get(id(scopes))
        if cached is not None and cached[0] is scopes:
            return cached[1], cached[2]
        keys = _keys(self.prefix, scopes)
        n = len(scopes)
        limits_args: list = []
        release_args: list = []
        for scope in scopes:
            limits = scope.limits
            budget = "" if limits.budget_usd is None else repr(float(limits.budget_usd))
            limits_args += (_limit(limits.rpm), _limit(limits.tpm), _limit(limits.max_concurrent), budget)
            release_args += (
                "1" if limits.max_concurrent is not None else "0",
                scope.period_end_ms if limits.budget_usd is not None else 0,
            )
        shas = self.client.shas
        acquire = pack_head(
            3 + len(keys) + 3 + 4 * n + 2,
            "EVALSHA", shas["acquire"], len(keys), *keys, n, self.lease_ms, WINDOW_MS, *limits_args,
        )  # fmt: skip
        release = pack_head(
            3 + len(keys) + 1 + 2 * n + 3, "EVALSHA", shas["release"], len(keys), *keys, n, *release_args
        )
        if len(self._packed) >= MAX_PACKED:
            self._packed.clear()
        self._packed[id(scopes)] = (scopes, acquire, release)
        return acquire, release

    def _release_command(self, item: Settlement) -> bytes:
        return self._heads(item.scopes)[1] + bulk(item.request_id, item.token_delta, repr(item.cost_usd))

    async def acquire(self, scopes: tuple[Scope, ...], request_id: str, estimate: int) -> Verdict:
        command = self._heads(scopes)[0] + bulk(request_id, estimate)
        try:
            reply = await self.client.call_packed(command)
        except (RedisReplyError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__) from None
        allowed, denied, reason = reply[0], reply[1], reply[2]
        states = tuple(
            ScopeState(int(reply[i]), int(reply[i + 1]), int(reply[i + 2]), float(reply[i + 3]))
            for i in range(3, len(reply), 4)
        )
        return Verdict(allowed == 1, states, int(denied), reason.decode() if isinstance(reason, bytes) else reason)

    def settle(self, settlement: Settlement) -> None:
        """Written to the connection at once; nobody waits for the reply."""
        if not self._pending and self.client.send_nowait(self._release_command(settlement)):
            return
        self._pending.append(settlement)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="limits-settle")

    async def spent(self, scope: Scope) -> float:
        """USD a scope spent in its current budget period."""
        try:
            value = await self.client.call("GET", f"{self.prefix}{scope.name}:b:{scope.period or '-'}")
        except (RedisReplyError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from None
        return float(value) if value else 0.0

    async def settle_now(self, settlement: Settlement) -> None:
        try:
            await self.client.call_packed(self._release_command(settlement))
        except (RedisReplyError, OSError, TimeoutError):
            self.settle(settlement)  # sent again once a connection is open

    @property
    def idle(self) -> bool:
        """Every request end handed to ``settle`` was answered by Redis (or given up on)."""
        protocol = self.client._protocol
        return not self._pending and (protocol is None or protocol.closed or not (protocol.waiting or protocol.held))

    async def _flush(self) -> None:
        """Open a connection and send what waited for one; given up (and logged) if Redis stays away."""
        for _ in range(3):
            try:
                async with asyncio.timeout(self.timeout):
                    await self.client._connection()
            except (RedisReplyError, OSError, TimeoutError):
                await asyncio.sleep(self.timeout)
                continue
            batch, self._pending = self._pending, []
            for item in batch:
                if not self.client.send_nowait(self._release_command(item)):
                    self._pending.append(item)
            if not self._pending:
                return
        lost, self._pending = self._pending, []
        now = time.monotonic()
        if now - self._last_loss_warning >= 60:
            self._last_loss_warning = now
            # Slots lapse by their lease; the tokens and cost of these requests go uncounted.
            logger.warning("limits store redis unreachable: %d request ends not recorded", len(lost))

    async def aclose(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(self.timeout * 4):
                    await flusher
        await self.client.aclose()
