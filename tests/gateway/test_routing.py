"""Routing and the circuit breaker as pure functions (no server, no Django)."""

from backends.snapshot import BackendRoute, snapshot_assemble
from gateway.breaker import BreakerBoard
from gateway.routing import plan


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def route(name, priority=1, health="healthy", enabled=True, healthy_since=None):
    return BackendRoute(
        name=name,
        kind="openai_compatible",
        url=f"http://{name}",
        api_key="k",
        priority=priority,
        health=health,
        enabled=enabled,
        healthy_since=healthy_since,
    )


def snapshot(*routes_and_models, default=""):
    return snapshot_assemble(
        version=1,
        worker_id="cld-x",
        routes=[r for r, _ in routes_and_models],
        models={r.name: [(m, None) for m in ms] for r, ms in routes_and_models},
        default_backend=default,
    )


def board(clock=None, failures=3, cooldown=30.0):
    clock = clock or Clock()
    return BreakerBoard(failure_threshold=failures, cooldown=cooldown, clock=clock, wall=clock)


def test_candidates_come_in_priority_order_without_excluded_backends():
    snap = snapshot(
        (route("c", 3), ["m"]),
        (route("a", 1, health="auth_failed"), ["m"]),
        (route("b", 2), ["m"]),
        (route("d", 0, enabled=False), ["m"]),
    )

    assert [r.name for r in plan(snap, "m", board()).candidates] == ["b", "c"]


def test_unknown_health_is_routable_before_the_first_probe():
    snap = snapshot((route("a", health="unknown"), ["m"]))

    assert [r.name for r in plan(snap, "m", board()).candidates] == ["a"]


def test_listed_model_is_never_silently_sent_to_the_default_backend():
    snap = snapshot((route("a", health="unhealthy"), ["m"]), (route("fallback", 9), []), default="fallback")

    result = plan(snap, "m", board())

    assert result.candidates == ()
    assert result.error.status == 503
    assert "a: unhealthy" in result.error.message


def test_unlisted_model_without_a_default_is_404():
    snap = snapshot((route("a", enabled=False), ["m"]), default="a")

    assert plan(snap, "other", board()).error.status == 404


def test_disabled_backends_leave_the_catalogue_and_a_model_is_owned_by_its_best_backend():
    snap = snapshot((route("low", 5), ["m", "x"]), (route("high", 1), ["m"]), (route("off", 0, enabled=False), ["z"]))

    assert b'"id":"m","object":"model","created":0,"owned_by":"high"' in snap.models_body
    assert b'"z"' not in snap.models_body


def test_circuit_opens_at_the_threshold_and_half_opens_after_the_cooldown():
    clock = Clock()
    breakers = board(clock, failures=2, cooldown=10)

    assert not breakers.record_failure("a")
    assert breakers.record_failure("a")
    assert not breakers.available("a")
    clock.now += 10
    assert breakers.state("a") == "half_open"
    assert breakers.acquire("a")
    # Only one trial at a time while half-open.
    assert not breakers.acquire("a")
    breakers.record_success("a")
    assert breakers.state("a") == "closed" and breakers.acquire("a")


def test_success_resets_the_consecutive_failure_count():
    breakers = board(failures=2)

    breakers.record_failure("a")
    breakers.record_success("a")
    breakers.record_failure("a")

    assert breakers.state("a") == "closed"


def test_a_successful_probe_after_the_opening_closes_the_circuit():
    clock = Clock()
    breakers = board(clock, failures=1, cooldown=60)
    breakers.record_failure("a")
    clock.now += 1

    assert breakers.state("a", healthy_since=clock.now - 5) == "open"  # probe older than the opening
    assert breakers.state("a", healthy_since=clock.now) == "closed"


def test_retry_after_blocks_a_backend_for_that_long():
    clock = Clock()
    breakers = board(clock)
    breakers.block("a", 30)

    assert not breakers.available("a")
    clock.now += 31
    assert breakers.available("a")
