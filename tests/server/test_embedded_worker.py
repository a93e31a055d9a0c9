"""The embedded Celery worker: one process, with beat on one of its threads, that runs the beat
schedule and stops with eldric-cloudd."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from django.core.management import call_command

from tests.cli_process import GatewayProcess
from tests.fakes.server import openai_models, reply_json

COMPLETION = {
    "id": "chatcmpl-embedded-1",
    "object": "chat.completion",
    "created": 1764201600,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    """Alive, and not a zombie nobody has reaped (a container's pid 1 may not reap orphans)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def discovering_every_second(fake, data_dir) -> GatewayProcess:
    """eldric-cloudd with its embedded worker, whose beat schedule discovers every second."""
    return GatewayProcess(
        "--backends",
        f"primary:{fake.url}/v1:sk-k-1234",
        worker=True,
        env={"ELDRIC_DISCOVERY_INTERVAL_SECONDS": "1"},
        data_dir=data_dir(),
    ).start()


def started_worker_pid(gateway: GatewayProcess, after: int = 0) -> int:
    line = gateway.wait_for_log("embedded Celery worker started", after=after)
    return int(re.search(r"\(pid (\d+)", line).group(1))


def test_the_beat_schedule_fires_from_a_thread_of_the_one_worker_process(fake_provider, data_dir):
    fake = fake_provider("primary")
    fake.on("GET", "/v1/models", openai_models("gpt-4o")).on("POST", "/v1/chat/completions", reply_json(COMPLETION))
    gateway = discovering_every_second(fake, data_dir)
    try:
        worker_pid = started_worker_pid(gateway)
        assert gateway.models() == {"gpt-4o": "primary"}

        # when: the provider starts serving a model after start-up
        fake.on("GET", "/v1/models", openai_models("gpt-4o", "gpt-4o-mini"))
        # then: the beat schedule's discovery (every second here) finds it, and it is routed
        gateway.wait_for(lambda: "gpt-4o-mini" in gateway.models(), "discovery from the beat schedule", timeout=30)
        chat = gateway.post(
            "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 200
        assert chat.json()["choices"][0]["message"]["content"] == "Hello."
        # and beat runs inside the worker: eldric-cloudd has one child, which has none
        assert children(gateway.pid) == [worker_pid]
        assert children(worker_pid) == []
    finally:
        assert gateway.stop() == 0

    # The worker stopped with eldric-cloudd, after the drain.
    assert not running(worker_pid)
    logs = gateway.logs()
    assert logs.index("drained") < logs.index("embedded Celery worker stopped")
    assert "Traceback" not in logs


def test_the_system_checks_pass():
    # The embedded worker used to run Django's system checks at every start-up; it skips them
    # now (they import every view), so they run here, against the same code and settings.
    call_command("check", fail_level="WARNING")


def test_a_worker_that_dies_is_started_again_and_the_schedule_goes_on(fake_provider, data_dir):
    fake = fake_provider("primary")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    gateway = discovering_every_second(fake, data_dir)
    try:
        first_pid = started_worker_pid(gateway)

        # when: the worker is killed (the OOM killer, an operator's kill -9)
        os.kill(first_pid, signal.SIGKILL)
        # then: eldric-cloudd says so and starts another
        said = gateway.wait_for_log(f"embedded Celery worker (pid {first_pid}) exited with status -9")
        assert "starting it again in 1 s" in said
        second_pid = started_worker_pid(gateway, after=gateway.logs().index(said))
        assert children(gateway.pid) == [second_pid]
        # and the beat schedule runs again: a model the provider serves from now on is discovered
        fake.on("GET", "/v1/models", openai_models("gpt-4o", "gpt-4o-mini"))
        gateway.wait_for(lambda: "gpt-4o-mini" in gateway.models(), "discovery after the restart", timeout=30)
    finally:
        assert gateway.stop() == 0
    assert not running(second_pid)


def test_the_worker_ends_when_eldric_cloudd_is_killed(fake_provider, data_dir):
    fake = fake_provider("primary")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    gateway = GatewayProcess("--backends", f"primary:{fake.url}/v1:sk-k-1234", worker=True, data_dir=data_dir())
    gateway.start()
    worker_pid = started_worker_pid(gateway)

    # when: eldric-cloudd gets no chance to stop its worker
    gateway.process.kill()
    gateway.process.wait()
    # then: the worker, in a session of its own, is not left behind
    deadline = time.monotonic() + 10
    while running(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(worker_pid)
