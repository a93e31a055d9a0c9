"""The back-off schedule and the client's state machine: plain objects, no clock, no IO."""

import random

import pytest

from eldric_cloud.controller.backoff import Backoff
from eldric_cloud.controller.state import FAILING, REGISTERED, UNREGISTERED, ControllerState


def test_the_ceiling_doubles_and_stops_at_five_minutes():
    backoff = Backoff(initial=1.0, cap=300.0)

    assert [backoff.ceiling(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff.ceiling(10_000) == 300.0


def test_every_wait_lies_between_half_the_ceiling_and_the_ceiling():
    backoff = Backoff(initial=1.0, cap=300.0)

    assert backoff.delay(3, rng=lambda: 0.0) == 2.0
    assert backoff.delay(3, rng=lambda: 1.0) == 4.0
    rng = random.Random(7).random
    for failures in range(1, 40):
        wait = backoff.delay(failures, rng)
        assert backoff.ceiling(failures) / 2 <= wait <= backoff.ceiling(failures) <= 300.0


def test_the_jitter_spreads_workers_that_failed_together():
    backoff = Backoff(initial=1.0, cap=300.0)
    rng = random.Random(11).random

    waits = {round(backoff.delay(12, rng), 3) for _ in range(50)}

    assert len(waits) > 40
    assert min(waits) >= 150.0
    assert max(waits) <= 300.0


def test_a_nonsensical_schedule_is_refused():
    with pytest.raises(ValueError):
        Backoff(initial=0, cap=1)
    with pytest.raises(ValueError):
        Backoff(initial=10, cap=1)


def test_success_schedules_the_next_heartbeat_and_remembers_the_hash():
    state = ControllerState(heartbeat_seconds=30.0)
    assert state.state == UNREGISTERED
    assert state.include_models("sha256:a")

    assert state.succeeded(at="t1", models_hash="sha256:a", with_models=True) == 30.0

    assert state.state == REGISTERED
    assert not state.include_models("sha256:a")
    assert state.include_models("sha256:b")  # the list changed: send it
    assert state.health()["registered"] is True
    assert (state.registrations, state.heartbeats) == (1, 1)


def test_a_404_means_register_again_at_once_with_the_list():
    state = ControllerState(heartbeat_seconds=30.0)
    state.succeeded(at="t1", models_hash="sha256:a", with_models=True)

    assert state.forgotten() == 0.0

    assert state.state == UNREGISTERED
    assert state.include_models("sha256:a")


def test_failures_back_off_count_up_and_forget_the_hash():
    state = ControllerState(heartbeat_seconds=30.0, backoff=Backoff(initial=1.0, cap=300.0), rng=lambda: 1.0)
    state.succeeded(at="t1", models_hash="sha256:a", with_models=True)

    waits = [state.failed(at=f"t{n}", error="cannot connect") for n in range(2, 14)]

    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert waits[-1] == 300.0
    assert state.state == FAILING
    assert state.consecutive_failures == 12
    # A controller that comes back may have restarted: the next send carries the list.
    assert state.include_models("sha256:a")
    health = state.health()
    assert health["last_error"] == "cannot connect"
    assert health["last_success"] == "t1"
    assert health["registered"] is False

    state.succeeded(at="t99", models_hash="sha256:a", with_models=True)
    assert state.consecutive_failures == 0
    assert state.health()["last_error"] == "cannot connect"  # kept, with its time, for the operator
