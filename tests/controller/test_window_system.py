"""The last-minute window (fed real RequestContexts) and the /proc parsers."""

from pathlib import Path

from eldric_cloud.controller.system import SystemSampler, cpu_times, memory_percent, rss_bytes
from eldric_cloud.controller.window import MinuteWindow
from gateway.context import RequestContext


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def finished(latency: float, *, status: int = 200, dialect: str = "openai.chat") -> RequestContext:
    ctx = RequestContext(request_id="r", dialect=dialect, method="POST", path="/v1/chat/completions")
    ctx.status = status
    ctx.done = ctx.received + latency
    return ctx


def test_the_window_counts_requests_errors_and_the_median_of_the_last_minute():
    clock = Clock()
    window = MinuteWindow(clock=clock)
    for _ in range(9):
        window.request_finished(finished(0.2))
    window.request_finished(finished(3.0, status=502))
    window.request_finished(finished(0.1, dialect="health"))  # not traffic, as in the roll-ups

    figures = window.figures()

    assert figures.requests == 10
    assert figures.errors == 1
    assert 100.0 <= figures.p50_latency_ms <= 250.0  # inside the 0.1-0.25 s bucket


def test_requests_older_than_a_minute_drop_out():
    clock = Clock()
    window = MinuteWindow(clock=clock)
    window.request_finished(finished(0.2))
    clock.now += 30
    window.request_finished(finished(0.2, status=500))

    assert window.figures().requests == 2
    clock.now += 31
    assert (window.figures().requests, window.figures().errors) == (1, 1)
    clock.now += 60
    assert window.figures().requests == 0
    assert window.figures().p50_latency_ms is None


def test_a_slot_reused_a_minute_later_starts_from_zero():
    clock = Clock()
    window = MinuteWindow(clock=clock)
    window.request_finished(finished(0.2))
    clock.now += 60  # the same slot, one minute on
    window.request_finished(finished(0.2))

    assert window.figures().requests == 1


STAT = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\n"
MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n"


def test_the_proc_parsers_read_cpu_memory_and_rss():
    assert cpu_times(STAT) == (150, 1000)
    assert cpu_times("intr 1 2 3") is None
    assert memory_percent(MEMINFO) == 75.0
    assert memory_percent("MemTotal: 0 kB\n") is None
    assert rss_bytes("100 25 3 1 0 20 0") > 0
    assert rss_bytes("") is None


def test_the_sampler_turns_two_readings_into_percentages(tmp_path: Path):
    (tmp_path / "self").mkdir()
    (tmp_path / "stat").write_text(STAT)
    (tmp_path / "meminfo").write_text(MEMINFO)
    (tmp_path / "self" / "statm").write_text("100 25 3 1 0 20 0")
    sampler = SystemSampler(proc=tmp_path)

    first = sampler.sample()
    (tmp_path / "stat").write_text("cpu  200 0 100 1450 50 0 0 0 0 0\n")
    second = sampler.sample()

    assert first.cpu_percent is None  # one reading says nothing about a rate
    assert second.cpu_percent == 18.8  # 150 busy of 800 jiffies
    assert second.memory_percent == 75.0
    assert second.process_rss_bytes > 0
    assert second.process_cpu_percent is not None


def test_without_proc_the_figures_are_null(tmp_path: Path):
    figures = SystemSampler(proc=tmp_path / "missing").sample()

    assert (figures.cpu_percent, figures.memory_percent, figures.process_rss_bytes) == (None, None, None)


def test_the_real_proc_gives_figures():
    sampler = SystemSampler()
    sampler.sample()
    figures = sampler.sample()

    assert 0.0 <= figures.memory_percent <= 100.0
    assert figures.process_rss_bytes > 0
