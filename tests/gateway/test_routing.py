"""Routing and the circuit breaker as pure functions (no server, no Django)."""

from backends.snapshot import BackendRoute, snapshot_assemble
from gateway.breaker import BreakerBoard
from gateway.routing import plan


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def route(name, priority=1, health="healthy", enabled=True, healthy_probes=0):
    return BackendRoute(
        name=name,
        kind="openai_compatible",
        url=f"http://{name}",
        api_key="k",
        priority=priority,
        health=health,
        enabled=enabled,
        healthy_probes=healthy_probes,
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
    return BreakerBoard(failure_threshold=failures, cooldown=cooldown, clock=clock)


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
    snap = snapshot((route("a", health="auth_failed"), ["m"]), (route("fallback", 9), []), default="fallback")

    result = plan(snap, "m", board())

    assert result.candidates == ()
    assert result.error.status == 503
    assert "a: auth_failed" in result.error.message


def test_a_backend_only_a_probe_calls_down_gets_one_trial_instead_of_a_503():
    snap = snapshot((route("a", 1, health="unhealthy"), ["m"]), (route("b", 2, health="unhealthy"), ["m"]))
    breakers = board()

    result = plan(snap, "m", breakers)

    assert [r.name for r in result.candidates] == ["a"] and result.trial
    lease = breakers.acquire_trial("a")
    assert lease is not None
    # One trial at a time: a second request while the first is out gets no lease.
    assert breakers.acquire_trial("a") is None
    lease.release()
    assert breakers.acquire_trial("a") is not None


def test_a_trial_that_worked_keeps_the_backend_routable_until_the_snapshot_changes():
    a = route("a", health="unhealthy")
    snap = snapshot((a, ["m"]))
    breakers = board()
    breakers.mark_recovered("a", snap.backends["a"])

    assert plan(snap, "m", breakers).trial is False
    assert [r.name for r in plan(snap, "m", breakers).candidates] == ["a"]
    # A new snapshot (a newer probe verdict) ends the override.
    assert plan(snapshot((route("a", health="unhealthy"), ["m"])), "m", breakers).trial is True


def test_a_model_served_only_by_disabled_backends_is_503_not_the_default_backend():
    snap = snapshot((route("off", 1, enabled=False), ["m"]), (route("fallback", 2), []), default="fallback")

    result = plan(snap, "m", board())

    assert result.candidates == ()
    assert result.error.status == 503
    assert result.error.code == "backend_disabled"
    assert "off" in result.error.message


def test_a_half_open_trial_lease_is_released_without_an_outcome():
    clock = Clock()
    breakers = board(clock, failures=1, cooldown=10)
    breakers.record_failure("a")
    clock.now += 10

    lease = breakers.acquire("a")
    assert lease is not None and lease.is_trial
    assert breakers.acquire("a") is None
    # The request was cancelled: nothing recorded, but the lease goes back.
    lease.release()
    assert breakers.acquire("a") is not None


def test_a_trial_lease_nobody_released_expires():
    clock = Clock()
    breakers = BreakerBoard(failure_threshold=1, cooldown=10, lease_seconds=60, clock=clock)
    breakers.record_failure("a")
    clock.now += 10
    assert breakers.acquire("a") is not None

    clock.now += 59
    assert breakers.acquire("a") is None
    clock.now += 2
    assert breakers.acquire("a") is not None


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
    breakers = board(failures=1, cooldown=60)
    breakers.record_failure("a", healthy_probes=7)

    assert breakers.state("a", healthy_probes=7) == "open"  # the probe the circuit already knew of
    assert breakers.state("a", healthy_probes=8) == "closed"


def test_retry_after_blocks_a_backend_for_that_long():
    clock = Clock()
    breakers = board(clock)
    breakers.block("a", 30)

    assert not breakers.available("a")
    clock.now += 31
    assert breakers.available("a")
