"""Passive state shared by every instance through Redis, off the request path.

What is shared (``REDIS_URL`` set, ``ELDRIC_SHARED_STATE`` on):

- a circuit opening or closing: another instance stops (or resumes) routing to the backend
  without sending it a request first;
- the half-open trial: an instance sends one only while it holds the deployment's *claim*
  (``SET NX PX``), so one trial request reaches a recovering backend, not one per instance;
- ``Retry-After`` blocks: an upstream's 429 seen by one instance blocks it in all;
- change notices for routing and access (``orgs.change_notices``), which wake the snapshot
  refresher, so the database is only polled slowly as a safety net.

Requests never wait for Redis. The breaker board (``gateway.breaker``) stays the only thing a
request reads; it appends its transitions to a bounded deque, and this module's one task,
on the serving event loop, sends them every ``sync_seconds``, applies what arrives by
pub/sub, and fetches trial claims ahead of need. Redis down: each process carries on with
its own view (exactly as without Redis), half-open trials are local again, and a warning is
logged once a minute until Redis is back; then the shared state is re-read in full.

Why ``redis.asyncio`` and not ``gateway.limits_resp``: nothing here is latency-bound (the
work is a few commands a second at most), and it needs pub/sub, which the limiter's
pipelined client does not speak; ``redis.asyncio`` has it, with reconnection and parsing
that need not be written again.

Keys (under ``prefix``): ``breakers`` (hash: backend -> ``"<wall time>|open|<probes>"`` or
``"<wall time>|closed|0"``), ``blocks`` (hash: backend -> unblock wall time),
``trial:<backend>:<opening's wall time>`` (the claim), and the channel ``events``. Times are
wall-clock seconds, so instances on different machines need synchronised clocks (NTP); a
skew shifts a cool-down by the skew.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from collections import deque
from urllib.parse import urlsplit

from gateway.breaker import BreakerBoard
from gateway.snapshot import SnapshotSource

logger = logging.getLogger(__name__)

# Transitions waiting to be sent; a Redis outage longer than this many drops the oldest.
OUTBOX_SIZE = 1024
# An unreachable Redis is logged at most this often (seconds).
WARN_EVERY = 60.0
# Wait between reconnection attempts (seconds).
RECONNECT_SECONDS = 1.0
# Every this many seconds each process publishes a ping to itself: a subscription that does
# not bring it back (a connection dead without a reset) is reconnected.
LIVENESS_SECONDS = 5.0

# Set a breaker entry only if it is newer than the stored one, then tell everyone.
# KEYS: hash, channel. ARGV: backend, wall time, value, message.
NEWER_SET = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local stored = tonumber(string.match(current, '^[^|]+'))
  if stored and stored >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
"""
# Keep a block only if it ends later than the stored one. KEYS: hash, channel.
# ARGV: backend, unblock time, message.
LATER_BLOCK = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
"""
# Forget blocks that ended (ARGV[1] = now); a block stored meanwhile ends later and stays.
# KEYS: hash. ARGV: now, backends.
DROP_ENDED_BLOCKS = """
local dropped = 0
for i = 2, #ARGV do
  local until_ = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if until_ and until_ <= tonumber(ARGV[1]) then
    dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return dropped
"""
# Extend (ARGV[2] ms) or delete (ARGV[2] = 0) a trial claim, only if this process holds it.
CLAIM_UPDATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
"""


class SharedState:
    def __init__(
        self,
        *,
        url: str,
        prefix: str,
        instance: str,
        board: BreakerBoard,
        snapshots: SnapshotSource,
        sync_seconds: float = 0.1,
        resync_seconds: float = 30.0,
        timeout: float = 2.0,
        claim_seconds: float = 2.0,
        safety_poll_seconds: float = 30.0,
        liveness_seconds: float = LIVENESS_SECONDS,
    ) -> None:
        if sync_seconds <= 0 or claim_seconds <= 0 or timeout <= 0:
            raise ValueError("shared state: sync_seconds, claim_seconds and timeout must be > 0")
        self.url = url
        self.prefix = prefix
        # Tells this process's own messages and claims from everyone else's.
        self.token = f"{instance}:{os.getpid()}:{os.urandom(4).hex()}"
        self.board = board
        self.snapshots = snapshots
        self.sync_seconds = sync_seconds
        self.resync_seconds = resync_seconds
        self.timeout = timeout
        self.claim_seconds = claim_seconds
        self.liveness_seconds = liveness_seconds
        self.snapshots.safety_poll_seconds = safety_poll_seconds
        self.outbox: deque = deque(maxlen=OUTBOX_SIZE)
        board.outbox = self.outbox
        self.connected = False
        self._task: asyncio.Task | None = None
        self._warned_at = -WARN_EVERY
        self._failures = 0
        # Backend -> the key of the claim this process holds in Redis (released once the trial
        # is decided). One key per opening, so a claim left over from an earlier opening can
        # never keep anyone from trying the next one.
        self._claims: dict[str, str] = {}
        # Of those, the ones held for a running trial (extended to the trial's lease).
        self._trials: set[str] = set()
        # (backend, opened_at) pairs already given their one unprompted claim attempt.
        self._anticipated: set[tuple[str, float]] = set()
        self._scripts: dict = {}
        # The number of the liveness ping in flight, or None.
        self._ping: int | None = None
        self._pings = 0
        self._ever_connected = False

    @classmethod
    def from_settings(cls, *, board: BreakerBoard, snapshots: SnapshotSource) -> SharedState | None:
        from django.conf import settings

        from orgs.change_notices import shared_state_url

        url = shared_state_url()
        if not url:
            return None
        return cls(
            url=url,
            prefix=settings.ELDRIC_SHARED_STATE_PREFIX,
            instance=settings.ELDRIC_INSTANCE,
            board=board,
            snapshots=snapshots,
            sync_seconds=settings.ELDRIC_SHARED_STATE_SYNC_SECONDS,
            resync_seconds=settings.ELDRIC_SHARED_STATE_RESYNC_SECONDS,
            timeout=settings.ELDRIC_SHARED_STATE_TIMEOUT_SECONDS,
            claim_seconds=settings.ELDRIC_BREAKER_TRIAL_CLAIM_SECONDS,
            safety_poll_seconds=settings.ELDRIC_SNAPSHOT_SAFETY_POLL_SECONDS,
        )

    @property
    def where(self) -> str:
        """Host, port and database of the URL; never its password."""
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}{parts.path or '/0'}"

    @property
    def channel(self) -> str:
        return self.prefix + "events"

    # --- lifecycle (on the serving loop) -----------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="shared-state")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._disconnected()

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(
                # Bytes, decoded here: a message that is not UTF-8 must not end the session.
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=False,
            )
            try:
                await self._session(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._disconnected()
                self._warn(exc)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _session(self, client) -> None:
        self._scripts = {
            "newer": client.register_script(NEWER_SET),
            "block": client.register_script(LATER_BLOCK),
            "claim": client.register_script(CLAIM_UPDATE),
            "drop_blocks": client.register_script(DROP_ENDED_BLOCKS),
        }
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            await self._resync(client)
            if self._failures:
                logger.info("shared state: connected to Redis again after %d failed attempts", self._failures)
            elif not self._ever_connected:
                logger.info("shared state: connected to Redis at %s (prefix %s)", self.where, self.prefix)
            self._ever_connected = True
            self._failures = 0
            self.connected = True
            self.board.shared_trials = True
            self.snapshots.subscribed = True
            # Whatever changed while not subscribed: the refresher reads the versions now.
            self.snapshots.wake()
            next_resync = time.monotonic() + self.resync_seconds
            next_ping = time.monotonic() + self.liveness_seconds
            self._ping = None
            while True:
                message = await pubsub.get_message(timeout=self.sync_seconds)
                while message is not None:
                    self._received(message.get("data"))
                    message = await pubsub.get_message(timeout=0)
                await self._send(client)
                if self._trials:
                    await self._trials_abandoned()
                await self._claim_trials(client)
                if time.monotonic() >= next_resync:
                    await self._resync(client)
                    next_resync = time.monotonic() + self.resync_seconds
                if time.monotonic() >= next_ping:
                    await self._check_liveness(client)
                    next_ping = time.monotonic() + self.liveness_seconds
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _check_liveness(self, client) -> None:
        if self._ping is not None:
            # The last ping never came back through the subscription within LIVENESS_SECONDS.
            raise ConnectionError("the Redis subscription stopped delivering messages")
        self._pings += 1
        self._ping = self._pings
        await client.publish(self.channel, json.dumps({"kind": "ping", "by": self.token, "n": self._pings}))

    def _disconnected(self) -> None:
        was = self.connected
        self.connected = False
        # Serving goes on with this process's own view, as without Redis.
        self.board.shared_trials = False
        self.snapshots.subscribed = False
        self._claims.clear()
        self._trials.clear()
        if was:
            self.snapshots.wake()  # back to the fast database poll now, not after the slow one

    def _warn(self, exc: Exception) -> None:
        self._failures += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "shared state: Redis unreachable (%s: %s); serving on this process's own breaker view "
                "and polling the database for routing changes (%d failed attempts)",
                type(exc).__name__,
                exc,
                self._failures,
            )

    # --- incoming ----------------------------------------------------------------------
    async def _resync(self, client) -> None:
        """Everything other instances stored: breakers, then blocks."""
        for name, value in (await client.hgetall(self.prefix + "breakers")).items():
            self._apply_breaker(_text(name), _text(value))
        now = time.time()
        over = []
        for raw_name, until in (await client.hgetall(self.prefix + "blocks")).items():
            name = _text(raw_name)
            try:
                until_f = float(until)
            except ValueError:
                until_f = 0.0
            if until_f > now and math.isfinite(until_f):
                self.board.apply_remote_block(name, until_f)
            else:
                over.append(name)
        if over:
            # The hash keeps only live blocks; one stored since the read ends later and stays.
            await self._scripts["drop_blocks"](keys=[self.prefix + "blocks"], args=[repr(now), *over])

    def _received(self, data) -> None:
        try:
            event = json.loads(data)
            kind = event["kind"]
        except (TypeError, ValueError, KeyError, IndexError):
            return  # not ours (another tool on the channel): ignore
        if kind == "snapshot":
            self.snapshots.wake()
            return
        if not isinstance(event, dict):
            return
        if event.get("by") == self.token:
            if kind == "ping" and event.get("n") == self._ping:
                self._ping = None
            return
        try:
            if kind == "breaker":
                self._apply_breaker(str(event["backend"]), str(event["value"]))
            elif kind == "block" and math.isfinite(until := float(event["until"])):
                self.board.apply_remote_block(str(event["backend"]), until)
        except (KeyError, TypeError, ValueError):
            logger.debug("shared state: ignored a malformed %s message", kind)

    def _apply_breaker(self, name: str, value: str) -> None:
        try:
            at, state, probes = value.split("|")
            at_f, probes_i = float(at), int(probes)
        except ValueError:
            return
        if not math.isfinite(at_f):
            return
        if state == "open":
            if self.board.apply_remote_open(name, at_f, probes_i):
                logger.info("backend %s: circuit opened by another instance", name)
        elif state == "closed" and self.board.apply_remote_close(name, at_f):
            logger.info("backend %s: circuit closed by another instance", name)

    # --- outgoing ----------------------------------------------------------------------
    async def _send(self, client) -> None:
        from redis.exceptions import ResponseError

        outbox = self.outbox
        while outbox:
            try:
                await self._send_one(*outbox[0])
            except ResponseError as exc:
                # Redis refused this one (say, a key of another type under our prefix): sending it
                # again would fail again and hold up everything behind it.
                logger.warning("shared state: Redis refused a %s update (%s); dropped", outbox[0][0], exc)
            outbox.popleft()  # only once sent or refused: a lost connection leaves it for the next one

    async def _send_one(self, kind: str, name: str, at: float, probes: int) -> None:
        if kind in ("open", "closed"):
            value = f"{at!r}|{kind}|{probes}"
            message = json.dumps({"kind": "breaker", "backend": name, "value": value, "by": self.token})
            await self._scripts["newer"](
                keys=[self.prefix + "breakers", self.channel], args=[name, repr(at), value, message]
            )
            # The trial, if this process held the claim, is decided: let the next one be anyone's.
            await self._claim_update(name, 0)
        elif kind == "block":
            message = json.dumps({"kind": "block", "backend": name, "until": at, "by": self.token})
            await self._scripts["block"](keys=[self.prefix + "blocks", self.channel], args=[name, repr(at), message])
        # The trial request may take as long as a request may: hold the claim that long.
        elif kind == "trial" and await self._claim_update(name, int(self.board.lease_seconds * 1000), keep=True):
            self._trials.add(name)

    async def _claim_update(self, name: str, ms: int, *, keep: bool = False) -> bool:
        key = self._claims.get(name)
        if key is None:
            return False
        updated = await self._scripts["claim"](keys=[key], args=[self.token, ms])
        if not keep:
            self._claims.pop(name, None)
            self._trials.discard(name)
        return bool(updated)

    async def _trials_abandoned(self) -> None:
        """A trial whose request ended without a verdict (the client left): the circuit is
        still half-open, and the claim shrinks back, so that an instance that gets no more
        requests for the backend does not keep the others from trying it."""
        for name in list(self._trials):
            circuit = self.board.circuit(name)
            if circuit.trial is not None:
                continue
            self._trials.discard(name)
            if circuit.opened_at is None:
                await self._claim_update(name, 0)  # closed meanwhile (by another instance)
            elif await self._claim_update(name, int(self.claim_seconds * 1000), keep=True):
                self.board.grant_claim(name, self.claim_seconds * 0.9)

    async def _claim_trials(self, client) -> None:
        """Half-open circuits: ask for the deployment's trial claim where a request wants one,
        and once per opening unprompted (the first request after the cool-down then finds it)."""
        for name, circuit in self.board.half_open_waiting():
            anticipated = (name, circuit.opened_at)
            if not circuit.trial_wanted and anticipated in self._anticipated:
                continue
            self._anticipated.add(anticipated)
            if len(self._anticipated) > 10_000:
                self._anticipated.clear()
            # The opening's wall time, which every instance that heard of it agrees on.
            key = f"{self.prefix}trial:{name}:{circuit.changed_at!r}"
            won = await client.set(key, self.token, nx=True, px=int(self.claim_seconds * 1000))
            if won:
                self._claims[name] = key
                # A little less than Redis keeps it, so this process never trials on a lapsed claim.
                self.board.grant_claim(name, self.claim_seconds * 0.9)
            else:
                circuit.trial_wanted = False  # someone else has it; ask again when a request wants one


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
