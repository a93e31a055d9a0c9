"""Two gateways' breaker boards kept in step through a real Redis (``gateway.shared_state``).

Each ``SharedState`` here is what one gateway process runs; the two share a Redis and a key
prefix, as two instances of one deployment do. The process-level proof (real eldric-cloudd
processes, real fake upstreams) is in ``test_shared_processes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest

from gateway.breaker import CLOSED, HALF_OPEN, OPEN, BreakerBoard
from gateway.shared_state import SharedState
from gateway.snapshot import SnapshotSource
from tests.conftest import service_missing
from tests.e2e.conftest import REDIS_URL


@pytest.fixture
def prefix():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError:
        service_missing("Redis on 127.0.0.1:6379")
    name = f"test:{uuid.uuid4().hex[:8]}:"
    yield name
    for key in client.scan_iter(name + "*"):
        client.delete(key)
    client.close()


class Instance:
    def __init__(self, name: str, prefix: str, *, url: str = REDIS_URL, cooldown: float = 0.5, **shared) -> None:
        self.board = BreakerBoard(failure_threshold=2, cooldown=cooldown, lease_seconds=30)
        self.snapshots = SnapshotSource(database=False)
        self.shared = SharedState(
            url=url,
            prefix=prefix,
            instance=name,
            board=self.board,
            snapshots=self.snapshots,
            **{"claim_seconds": 1.0, **shared},
        )

    def fail(self, backend: str, times: int = 2) -> None:
        for _ in range(times):
            self.board.record_failure(backend)


async def started(*instances: Instance) -> None:
    for instance in instances:
        instance.shared.start()
    await eventually(lambda: all(i.shared.connected for i in instances), "connected to Redis")


async def eventually(predicate, what: str, timeout: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout}s")


async def first_lease(*instances, backend: str = "up", timeout: float = 2.0):
    """The first lease any of ``instances`` grants for ``backend`` (asked in turn), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for instance in instances:
            lease = instance.board.acquire(backend)
            if lease is not None:
                return lease
        await asyncio.sleep(0.02)
    return None


@contextlib.asynccontextmanager
async def deployment(prefix: str, count: int = 2, **kwargs):
    instances = [Instance(f"i{n}", prefix, **kwargs) for n in range(count)]
    await started(*instances)
    try:
        yield instances
    finally:
        for instance in instances:
            await instance.shared.aclose()


async def test_a_circuit_opened_in_one_instance_is_open_in_the_other_within_a_second(prefix):
    async with deployment(prefix, cooldown=30) as (a, b):
        a.fail("up")
        assert a.board.state("up") == OPEN
        await eventually(lambda: b.board.state("up") == OPEN, "B sees the opening", timeout=1.0)
        assert not b.board.available("up")

        # A success in A closes it everywhere.
        a.board.record_success("up")
        await eventually(lambda: b.board.state("up") == CLOSED, "B sees the closing", timeout=1.0)
        assert b.board.available("up")


async def test_an_instance_started_later_reads_the_open_circuit_from_redis(prefix):
    async with deployment(prefix, count=1, cooldown=30) as (a,):
        a.fail("up")
        await asyncio.sleep(0.3)  # one sync period or three: A's transition is stored
        late = Instance("late", prefix, cooldown=30)
        await started(late)
        try:
            assert late.board.state("up") == OPEN
        finally:
            await late.shared.aclose()


async def test_only_one_instance_gets_the_half_open_trial(prefix):
    async with deployment(prefix, count=3, cooldown=0.3) as instances:
        instances[0].fail("up")
        await eventually(lambda: all(i.board.state("up") == OPEN for i in instances), "all see the opening")
        await eventually(lambda: all(i.board.state("up") == HALF_OPEN for i in instances), "cool-down over")

        # Every instance wants to send the trial; after the claims settle, exactly one may.
        async def leases():
            return [i.board.acquire("up") for i in instances]

        granted = []
        deadline = time.monotonic() + 2
        while not granted and time.monotonic() < deadline:
            granted = [lease for lease in await leases() if lease is not None]
            await asyncio.sleep(0.05)
        assert len(granted) == 1 and granted[0].is_trial
        # Held while the trial runs: nobody else gets one, even after the claim's own lifetime.
        await asyncio.sleep(1.5)
        assert [lease for lease in await leases() if lease is not None] == []

        # The trial succeeds: closed in every instance.
        owner = next(i for i in instances if i.board.state("up") == HALF_OPEN and i.board.circuit("up").trial)
        owner.board.record_success("up")
        granted[0].release()
        await eventually(lambda: all(i.board.state("up") == CLOSED for i in instances), "all closed")


async def test_a_failed_trial_opens_the_circuit_everywhere_again(prefix):
    async with deployment(prefix, cooldown=0.3) as (a, b):
        a.fail("up")
        await eventually(lambda: b.board.state("up") == HALF_OPEN and a.board.state("up") == HALF_OPEN, "half-open")
        lease = await first_lease(a, b)
        assert lease is not None and lease.is_trial
        owner = a if a.board.circuit("up").trial is lease else b
        other = b if owner is a else a
        owner.board.record_failure("up")
        lease.release()
        await eventually(lambda: other.board.state("up") == OPEN, "the other sees it open again", timeout=1.0)


async def test_a_retry_after_block_in_one_instance_blocks_the_backend_in_the_other(prefix):
    async with deployment(prefix) as (a, b):
        a.board.block("busy", 5)
        await eventually(lambda: b.board.blocked("busy"), "B honours A's Retry-After", timeout=1.0)
        assert 4 < b.board.blocked_for("busy") <= 5
        assert not b.board.available("busy")


async def test_a_routing_notice_wakes_every_snapshot_refresher(prefix, settings):
    settings.ELDRIC_SHARED_STATE_PREFIX = prefix
    settings.REDIS_URL = REDIS_URL
    async with deployment(prefix) as (a, b):
        for instance in (a, b):
            assert instance.snapshots.subscribed
            instance.snapshots._wake.clear()
        from orgs.change_notices import change_publisher

        await asyncio.to_thread(change_publisher().publish, "routing")
        await eventually(lambda: a.snapshots._wake.is_set() and b.snapshots._wake.is_set(), "both woken", timeout=1.0)


async def test_without_redis_each_instance_keeps_its_own_view_and_trials_locally(prefix, caplog):
    # Nothing listens on this port: the instances never connect, and serve on their own state.
    from tests.fakes.server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    a, b = Instance("a", prefix, url=url, cooldown=0.2), Instance("b", prefix, url=url, cooldown=0.2)
    a.shared.start()
    b.shared.start()
    try:
        await asyncio.sleep(0.3)
        assert not a.shared.connected and not a.snapshots.subscribed
        a.fail("up")
        await asyncio.sleep(0.3)
        assert b.board.state("up") == CLOSED
        # Half-open: the local trial goes ahead without any claim.
        lease = a.board.acquire("up")
        assert lease is not None and lease.is_trial
        assert "Redis unreachable" in caplog.text
        assert caplog.text.count("Redis unreachable") == 2  # once per instance, not once per attempt
    finally:
        await a.shared.aclose()
        await b.shared.aclose()


async def test_a_trial_abandoned_without_a_verdict_lets_another_instance_try_soon(prefix):
    async with deployment(prefix, cooldown=0.3) as (a, b):
        a.fail("up")
        await eventually(lambda: b.board.state("up") == HALF_OPEN and a.board.state("up") == HALF_OPEN, "half-open")
        lease = await first_lease(a, b)
        assert lease is not None and lease.is_trial
        other = b if a.board.circuit("up").trial is not lease else a
        await asyncio.sleep(0.3)  # the claim is extended for the trial
        # when: the trial's client goes away, no success, no failure
        lease.release()
        # then: within the short claim (1 s here), not the trial's long lease, the other may try
        granted = None
        deadline = time.monotonic() + 3
        while granted is None and time.monotonic() < deadline:
            granted = other.board.acquire("up")
            await asyncio.sleep(0.05)
        assert granted is not None and granted.is_trial


class RedisLink:
    """A TCP relay to the real Redis that the test can cut and restore: Redis "goes away" for
    the instances behind it (connections reset, new ones refused) without stopping Redis."""

    def __init__(self) -> None:
        from tests.fakes.server import free_port

        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/15"

    async def restore(self) -> RedisLink:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)
        return self

    def freeze(self) -> None:
        """Connections stay open but carry nothing more: a peer gone without a reset."""
        self.frozen = True

    async def cut(self) -> None:
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _relay(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source, sink) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    if self.frozen:
                        continue
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def test_redis_going_away_leaves_each_instance_serving_and_coming_back_brings_the_state_in(prefix, caplog):
    link = await RedisLink().restore()
    a = Instance("a", prefix, url=link.url, cooldown=30)
    b = Instance("b", prefix, url=link.url, cooldown=30)
    try:
        await started(a, b)
        # when: Redis goes away
        await link.cut()
        await eventually(lambda: not a.shared.connected and not b.shared.connected, "both notice", timeout=5)
        assert not a.board.shared_trials and not a.snapshots.subscribed  # local trials, fast DB poll
        # then: each instance's breaker still works on its own
        a.fail("up")
        assert a.board.state("up") == OPEN and b.board.state("up") == CLOSED
        await asyncio.sleep(1.5)  # several reconnection attempts
        assert caplog.text.count("Redis unreachable") == 2  # once per instance, not once per attempt

        # when: Redis is back
        await link.restore()
        await eventually(lambda: a.shared.connected and b.shared.connected, "both reconnect", timeout=5)
        # then: what A did meanwhile reaches B
        await eventually(lambda: b.board.state("up") == OPEN, "B learns of A's opening", timeout=2)
        assert "connected to Redis again" in caplog.text
    finally:
        await a.shared.aclose()
        await b.shared.aclose()
        with contextlib.suppress(Exception):
            await link.cut()


async def test_garbage_on_the_channel_is_ignored_and_the_instance_stays_in_step(prefix):
    import redis.asyncio as aioredis

    async with deployment(prefix, count=1, cooldown=30) as (a,):
        publisher = aioredis.Redis.from_url(REDIS_URL)
        try:
            for junk in (
                b"\xff\xfe not json",
                b"[1, 2]",
                b'"kind"',
                b'{"kind": "breaker"}',
                b'{"kind": "breaker", "backend": "up", "value": "nan|open|0"}',
                b'{"kind": "block", "backend": "up", "until": "Infinity"}',
                b'{"kind": "block", "backend": "up", "until": [1]}',
            ):
                await publisher.publish(prefix + "events", junk)
            await asyncio.sleep(0.3)
            assert a.shared.connected
            assert a.board.state("up") == CLOSED and not a.board.blocked("up")
            # and a well-formed message still lands
            await publisher.publish(
                prefix + "events",
                f'{{"kind": "block", "backend": "up", "until": {time.time() + 5}, "by": "other"}}',
            )
            await eventually(lambda: a.board.blocked("up"), "the block")
        finally:
            await publisher.aclose()


async def test_no_shared_state_without_redis_or_when_turned_off(settings):
    board, snapshots = BreakerBoard(failure_threshold=1, cooldown=1), SnapshotSource(database=False)
    settings.REDIS_URL = ""
    settings.ELDRIC_SHARED_STATE_REDIS_URL = ""
    assert SharedState.from_settings(board=board, snapshots=snapshots) is None
    settings.REDIS_URL = REDIS_URL
    settings.ELDRIC_SHARED_STATE = False
    assert SharedState.from_settings(board=board, snapshots=snapshots) is None
    assert board.outbox is None  # the board keeps no outbox: nothing is queued per request


async def test_a_redis_connection_that_goes_silent_is_noticed_and_replaced(prefix):
    link = await RedisLink().restore()
    a = Instance("a", prefix, url=link.url, timeout=0.5, liveness_seconds=0.3)
    try:
        await started(a)
        # when: the connections stay open but nothing comes back (no reset, no error)
        link.freeze()
        # then: the instance notices, and serves on its own view
        await eventually(lambda: not a.shared.connected, "the silence is noticed", timeout=3)
        assert not a.snapshots.subscribed
        # and once Redis answers again, it is back in step
        link.frozen = False
        await eventually(lambda: a.shared.connected, "reconnected", timeout=5)
    finally:
        await a.shared.aclose()
        with contextlib.suppress(Exception):
            await link.cut()


async def test_the_redis_password_never_reaches_the_log(prefix, caplog):
    from tests.fakes.server import free_port

    a = Instance("a", prefix, url=f"redis://eldric:s3cret-redis-pass@127.0.0.1:{free_port()}/3")
    a.shared.start()
    try:
        await eventually(lambda: "Redis unreachable" in caplog.text, "the warning")
        assert a.shared.where.endswith("/3") and "s3cret" not in a.shared.where
        assert "s3cret-redis-pass" not in caplog.text
    finally:
        await a.shared.aclose()


async def test_a_trial_still_running_from_an_earlier_opening_does_not_block_the_next_one(prefix):
    async with deployment(prefix, cooldown=0.3) as (a, b):
        a.fail("up")
        await eventually(lambda: a.board.state("up") == HALF_OPEN and b.board.state("up") == HALF_OPEN, "half-open")
        stale = await first_lease(a)
        assert stale is not None and stale.is_trial
        await asyncio.sleep(0.3)  # A's claim is extended for its (hanging) trial

        # when: B closes the circuit (say, a probe), then it opens again in B
        b.board.record_success("up")
        await eventually(lambda: a.board.state("up") == CLOSED, "A sees the closing")
        b.fail("up")
        await eventually(lambda: b.board.state("up") == HALF_OPEN, "half-open again")

        # then: B may send the new opening's trial although A's old one still hangs
        fresh = None
        deadline = time.monotonic() + 3
        while fresh is None and time.monotonic() < deadline:
            fresh = b.board.acquire("up")
            await asyncio.sleep(0.05)
        assert fresh is not None and fresh.is_trial
        stale.release()
        fresh.release()
