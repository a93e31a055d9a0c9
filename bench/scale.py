"""How eldric-cloudd's cost grows with the work (issue 14): long streams, a big catalogue, many keys.

Stdlib only, like ``bench/run.py``, whose process handling, wrk driver and /proc readers it reuses.
Each scenario starts ``bench/fake_provider.py`` and one ``eldric-cloudd --no-worker`` process with
SQLite in a temporary data dir, fills the database when the scenario needs it (a Django helper run
with the project's venv: ``scale.py _db ...``), measures, and prints its figures against the
issue's targets. Pinning (taskset, at least 2 CPUs): the gateway on CPU 0; the fake provider, wrk,
the database helpers and this script's own client on CPU 1.

    .venv/bin/python bench/scale.py streams                  # 5,000 streams at 1 token/s, 30 s
    .venv/bin/python bench/scale.py catalogue                # 500 backends x 200 models
    .venv/bin/python bench/scale.py keys                     # 10 ... 100,000 client keys
    .venv/bin/python bench/scale.py all --json var/scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (bench/run.py: processes, wrk, /proc)

CATALOGUE_PREFIX = "cat"
# Issue 14's targets.
TARGET_RSS_PER_STREAM_KB = 50
TARGET_REBUILD_S = 1.0
TARGET_MODELS_MS = 20.0
TARGET_P99_RATIO = 2.0
# What a forced rebuild of the catalogue scenario follows (--bump-kind).
BUMP_KINDS = {
    "probe": "a successful probe of the next backend (what a 500-backend catalogue does several times a second)",
    "models": "one backend's discovery replaced one of its models",
    "reorder": "every backend's priority moved one place (the whole catalogue is re-ordered)",
    "none": "a version bump that changes nothing",
}
# Keys: "flat" CPU/request from 10 to 100k keys. A per-request cost that grows with the count
# would show as a slope; on a shared machine ±15 % between counts is noise.
FLAT_TOLERANCE = 0.15


class Setup:
    """What every scenario shares: pinning, the interpreters, the children and the options."""

    def __init__(self, args) -> None:
        self.args = args
        pin = args.pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
        self.gateway_cpu, self.load_cpu = (0, 1) if pin else (None, None)
        self.pinned = pin
        self.children = bench.Children()
        venv = REPO / ".venv" / "bin" / "python"
        self.django_python = str(venv if venv.exists() else sys.executable)


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for this client and (inherited) every child."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_fake(setup: Setup, *extra: str):
    process = setup.children.start(
        [*bench._pin(setup.load_cpu), setup.args.python, str(HERE / "fake_provider.py"), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    signal.signal(signal.SIGALRM, bench._alarm)
    signal.alarm(15)
    try:
        line = process.stdout.readline()
    finally:
        signal.alarm(0)
    if "listening on" not in line:
        raise bench.BenchError(f"fake provider did not start: {line.strip() or 'no output'}")
    return process, int(line.rsplit(":", 1)[1])


def code_path(setup: Setup) -> str:
    """The checkout whose code the gateway and the database helpers import (``--repo``)."""
    return str(Path(setup.args.repo).resolve()) if setup.args.repo else str(REPO)


def start_gateway(setup: Setup, *, fake_port: int, data_dir: Path, log_path: Path, env_extra: dict[str, str]):
    """One eldric-cloudd as ``bench/run.py`` starts it, plus the scenario's settings."""
    port = bench._free_port()
    env = bench.gateway_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_path(setup), os.environ.get("PYTHONPATH", "")]))
    env.update(env_extra)
    command = bench.gateway_argv(setup.args, cpu=setup.gateway_cpu, port=port, data_dir=data_dir, fake_port=fake_port)
    with log_path.open("w") as log:
        process = setup.children.start(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(data_dir))
    bench.wait_for_gateway(process, port, log_path, setup.args.startup_timeout)
    return process, port


def db_helper_env(setup: Setup, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(ELDRIC_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="eldric_cloud.settings")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_path(setup), env.get("PYTHONPATH", "")]))
    return env


def db_helper(setup: Setup, data_dir: Path, *action: str, timeout: float = 600.0) -> dict:
    """Run ``scale.py _db ACTION`` against the gateway's database (pinned with the load)."""
    done = subprocess.run(
        [*bench._pin(setup.load_cpu), setup.django_python, str(Path(__file__).resolve()), "_db", *action],
        cwd=code_path(setup), env=db_helper_env(setup, data_dir), capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise bench.BenchError(f"_db {' '.join(action)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def db_helper_start(setup: Setup, data_dir: Path, *action: str) -> subprocess.Popen:
    return setup.children.start(
        [*bench._pin(setup.load_cpu), setup.django_python, str(Path(__file__).resolve()), "_db", *action],
        cwd=code_path(setup), env=db_helper_env(setup, data_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def run_queue_wait_s(pid: int) -> float:
    """Seconds the main thread of ``pid`` (the gateway's event loop) has spent runnable but waiting
    for a CPU (/proc/<pid>/schedstat): on a shared machine, the time other processes took from it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return 0.0


def pin_self(cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {cpu})


# --- scenario 1: long streams ------------------------------------------------------------------


class StreamStats:
    """Shared by every stream of one run; written from the event loop only."""

    def __init__(self, total: int, gateway_pid: int) -> None:
        self.total = total
        self.gateway_pid = gateway_pid
        self.open = 0  # streams whose 200 headers arrived and that have not ended
        self.started = 0
        self.failed_early = 0  # streams that ended before their headers arrived
        self.done = 0
        self.errors: dict[str, int] = {}
        self.full_load = False  # every stream open at once
        self.window_start = 0.0
        self.window_end = 0.0
        self.latencies_ms: list[float] = []  # per event, while every stream is open
        self.all_latencies_ms: list[float] = []
        self.rss_full_kib = 0
        self.rss_max_kib = 0
        self.events = 0
        self.cpu_window = [0.0, 0.0]  # gateway CPU seconds at the window's start and end
        self.wait_window = [0.0, 0.0]  # gateway run-queue wait at the window's start and end
        self.lag_ms: list[float] = []  # this client's own event-loop lag: how late a 50 ms timer fires
        self.profiler: subprocess.Popen | None = None

    def error(self, reason: str, *, early: bool = False) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        if early:
            self.failed_early += 1
            self._check_full()

    def opened(self) -> None:
        self.open += 1
        self.started += 1
        self._check_full()

    def _check_full(self) -> None:
        # Full load: every stream has been tried and all that opened are still open.
        if not self.window_start and self.started + self.failed_early == self.total and self.open == self.started:
            self.full_load = True
            self.window_start = time.monotonic()
            self.cpu_window[0] = bench.cpu_seconds(self.gateway_pid)
            self.wait_window[0] = run_queue_wait_s(self.gateway_pid)

    def closed(self) -> None:
        self.open -= 1
        if self.full_load:
            self.full_load = False
            self.window_end = time.monotonic()
            self.cpu_window[1] = bench.cpu_seconds(self.gateway_pid)
            self.wait_window[1] = run_queue_wait_s(self.gateway_pid)


class StreamClient(asyncio.Protocol):
    """One streamed chat request over raw HTTP/1.1: chunked decoding, SSE events, per-event latency."""

    def __init__(self, request: bytes, stats: StreamStats, finished: asyncio.Future) -> None:
        self.request = request
        self.stats = stats
        self.finished = finished
        self.transport = None
        self.buffer = b""
        self.headers_done = False
        self.chunk_left = 0  # body bytes left in the current chunk (then its CRLF)
        self.in_chunk = False
        self.text = b""  # decoded body not yet split into events
        self.events = 0
        self.saw_done = False
        self.ended = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.headers_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"?"
            if status != b"200" or b"chunked" not in head.lower():
                self._fail(f"HTTP {status.decode(errors='replace')}")
                return
            self.headers_done = True
            self.stats.opened()
        self._decode()

    def _decode(self) -> None:
        buffer = self.buffer
        while buffer:
            if not self.in_chunk:
                end = buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(buffer[:end].split(b";", 1)[0], 16)
                buffer = buffer[end + 2 :]
                if size == 0:
                    self.buffer = b""
                    self._events()
                    self._finish()
                    return
                self.chunk_left, self.in_chunk = size, True
            if len(buffer) < self.chunk_left + 2:
                break
            self.text += buffer[: self.chunk_left]
            buffer = buffer[self.chunk_left + 2 :]
            self.in_chunk = False
        self.buffer = buffer
        self._events()

    def _events(self) -> None:
        now = time.time()
        while True:
            end = self.text.find(b"\n\n")
            if end < 0:
                return
            event, self.text = self.text[:end], self.text[end + 2 :]
            if event == b"data: [DONE]":
                self.saw_done = True
                continue
            if b'"error"' in event:
                self.stats.error("error event")
                continue
            start = event.find(b'"content":"')
            if start < 0:
                continue
            start += len(b'"content":"')
            try:
                sent = float(event[start : event.index(b'"', start)])
            except ValueError:
                continue
            latency = (now - sent) * 1000
            self.events += 1
            self.stats.events += 1
            self.stats.all_latencies_ms.append(latency)
            if self.stats.full_load:
                self.stats.latencies_ms.append(latency)

    def _finish(self) -> None:
        if not self.saw_done:
            self._fail("no [DONE]")
            return
        self.ended = True
        self.stats.closed()
        self.stats.done += 1
        self.transport.close()
        if not self.finished.done():
            self.finished.set_result(self.events)

    def _fail(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.stats.error(reason, early=not self.headers_done)
        if self.headers_done:
            self.stats.closed()
        if self.transport is not None:
            self.transport.close()
        if not self.finished.done():
            self.finished.set_result(self.events)

    def connection_lost(self, exc) -> None:
        if not self.ended:
            self._fail("connection lost" if exc is None else type(exc).__name__)


async def stream_load(
    port: int, *, streams: int, ramp_rate: float, expected_events: int, stats: StreamStats, profile=None
) -> None:
    body = json.dumps({**bench.CHAT_BODY, "stream": True}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    loop = asyncio.get_running_loop()
    begin = loop.time()
    futures: list[asyncio.Future] = []
    connecting = asyncio.Semaphore(200)  # connects in flight; the listen backlog stays shallow

    async def one(future: asyncio.Future) -> None:
        async with connecting:
            try:
                await loop.create_connection(lambda: StreamClient(request, stats, future), "127.0.0.1", port)
            except OSError as exc:
                stats.error(f"connect: {exc.strerror or type(exc).__name__}", early=True)
                future.set_result(0)

    async def sample_rss() -> None:
        while True:
            rss = bench.memory_kib(stats.gateway_pid).get("VmRSS", 0)
            stats.rss_max_kib = max(stats.rss_max_kib, rss)
            if stats.full_load:
                stats.rss_full_kib = max(stats.rss_full_kib, rss)
            await asyncio.sleep(0.5)

    ramp_end = begin + streams / ramp_rate

    async def sample_lag() -> None:
        # From the end of the ramp: this client's own lag, and the profiler (--py-spy).
        while True:
            start = loop.time()
            await asyncio.sleep(0.05)
            if start >= ramp_end:
                stats.lag_ms.append((loop.time() - start - 0.05) * 1000)
                if profile is not None and stats.profiler is None:
                    stats.profiler = profile()

    sampler = asyncio.create_task(sample_rss())
    lagger = asyncio.create_task(sample_lag())
    tasks = []
    for index in range(streams):
        delay = begin + index / ramp_rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        future = loop.create_future()
        futures.append(future)
        tasks.append(asyncio.create_task(one(future)))
    counts = await asyncio.gather(*futures)
    sampler.cancel()
    lagger.cancel()
    short = sum(1 for c in counts if 0 < c < expected_events)
    if short:
        stats.errors["fewer events than sent"] = short


def scenario_streams(setup: Setup) -> dict:
    args = setup.args
    ramp_s = args.streams / args.ramp_rate
    # Every stream stays open for the ramp plus the measured duration, then ends with [DONE].
    chunks = math.ceil((ramp_s + args.duration) / args.stream_interval) + 2
    fd_limit = raise_fd_limit()
    needed = 2 * args.streams + 200
    if fd_limit < needed:
        raise bench.BenchError(f"RLIMIT_NOFILE is {fd_limit}; {args.streams} streams need about {needed}")
    limits = {
        # Client connections per process (default 2048) and the upstream pool (default 1000).
        "ELDRIC_MAX_CLIENT_CONNECTIONS": str(args.streams + 100),
        "ELDRIC_MAX_CONNECTIONS": str(args.streams + 100),
    }
    with tempfile.TemporaryDirectory(prefix="eldric-scale-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "data").mkdir()
        _fake, fake_port = start_fake(
            setup, "--stream-interval", str(args.stream_interval), "--stream-chunks", str(chunks)
        )
        try:
            gateway, port = start_gateway(
                setup, fake_port=fake_port, data_dir=tmp_path / "data", log_path=tmp_path / "gw.log", env_extra=limits
            )
            pid = gateway.pid
            rss_ready = bench.memory_kib(pid).get("VmRSS", 0)
            # No stream warm-up (a paced stream lasts the whole run): one JSON answer checks the route.
            bench._post(f"http://127.0.0.1:{port}/v1/chat/completions", bench.CHAT_BODY)
            rss_before = bench.memory_kib(pid).get("VmRSS", 0)
            stats = StreamStats(args.streams, pid)
            cpu_before = bench.cpu_seconds(pid)
            wait_before = run_queue_wait_s(pid)
            fake_cpu_before = bench.cpu_seconds(_fake.pid)
            started = time.monotonic()

            def profile() -> subprocess.Popen:
                # py-spy on the gateway for the first seconds of full load (--py-spy).
                seconds = str(max(1, min(10, round(args.duration))))
                return setup.children.start(
                    [args.py_spy, "record", "-p", str(pid), "-d", seconds, "-r", "100", "-f", "raw",
                     "-o", args.profile_out, "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip

            asyncio.run(
                stream_load(
                    port, streams=args.streams, ramp_rate=args.ramp_rate, expected_events=chunks, stats=stats,
                    profile=profile if args.py_spy else None,
                )
            )  # fmt: skip
            if stats.profiler is not None:
                stats.profiler.wait(timeout=60)
            elapsed = time.monotonic() - started
            cpu = bench.cpu_seconds(pid) - cpu_before
            waited = run_queue_wait_s(pid) - wait_before
            fake_cpu = bench.cpu_seconds(_fake.pid) - fake_cpu_before
            client_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
            memory = bench.memory_kib(pid)
            alive = gateway.poll() is None
            log_tail = bench._tail(tmp_path / "gw.log", 15)
        finally:
            setup.children.stop_all()
    latencies = stats.latencies_ms or stats.all_latencies_ms
    window = (stats.window_end or time.monotonic()) - stats.window_start if stats.window_start else 0.0
    window_cpu = (stats.cpu_window[1] or stats.cpu_window[0]) - stats.cpu_window[0]
    window_wait = (stats.wait_window[1] or stats.wait_window[0]) - stats.wait_window[0]
    # The steadiest figure on a shared machine: the gateway's CPU per relayed event at full load.
    cpu_per_event = window_cpu * 1000 / len(stats.latencies_ms) if stats.latencies_ms and window_cpu else None
    errors = sum(stats.errors.values())
    # At full load if it was reached, else the highest RSS seen (with fewer streams open).
    rss_load = stats.rss_full_kib or stats.rss_max_kib
    per_stream = (rss_load - rss_before) * 1024 / max(stats.started, 1) / 1000 if rss_load else None
    result = {
        "scenario": "streams",
        "streams": args.streams,
        "stream_interval_s": args.stream_interval,
        "events_per_stream": chunks,
        "ramp_rate_per_s": args.ramp_rate,
        "gateway_limits": limits,
        "rlimit_nofile": fd_limit,
        "errors": errors,
        "error_reasons": stats.errors,
        "full_load_reached": bool(stats.window_start),
        "completed": stats.done,
        "full_load_window_s": round(window, 1),
        "rss_ready_mb": round(rss_ready / 1024, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_full_load_mb": round(rss_load / 1024, 1),
        "peak_rss_mb": round(memory.get("VmHWM", 0) / 1024, 1),
        "rss_per_stream_kb": round(per_stream, 1) if per_stream is not None else None,
        "events_measured": len(latencies),
        "event_latency_p50_ms": round(percentile(latencies, 0.5), 2),
        "event_latency_p99_ms": round(percentile(latencies, 0.99), 2),
        "event_latency_all_p99_ms": round(percentile(stats.all_latencies_ms, 0.99), 2),
        "gateway_cpu_s": round(cpu, 2),
        "gateway_cpu_share_full_load": round(window_cpu / window, 3) if window else None,
        "gateway_cpu_ms_per_event_full_load": round(cpu_per_event, 4) if cpu_per_event else None,
        "gateway_run_queue_wait_share": round(waited / elapsed, 3) if elapsed else None,
        "gateway_run_queue_wait_share_full_load": round(window_wait / window, 3) if window else None,
        "fake_provider_cpu_s": round(fake_cpu, 2),
        "client_cpu_s_total": round(client_cpu, 2),
        "client_loop_lag_p50_ms": round(percentile(stats.lag_ms, 0.5), 2),
        "client_loop_lag_p99_ms": round(percentile(stats.lag_ms, 0.99), 2),
        "gateway_cpu_share": round(cpu / elapsed, 3) if elapsed else None,
        "gateway_alive": alive,
        "elapsed_s": round(elapsed, 1),
        "log_tail": "" if alive and not errors else log_tail,
    }
    print_streams(result)
    return result


def print_streams(r: dict) -> None:
    errors, per_stream = r["errors"], r["rss_per_stream_kb"]
    rows = [("figure", "value", "target")]
    rows.append(("errors", f"{errors} ({r['completed']} of {r['streams']} streams complete)",
                 f"0: {verdict(not errors)}"))  # fmt: skip
    if errors:
        rows.append(("error reasons", json.dumps(r["error_reasons"]), ""))
    rows.append(("time with every stream open", f"{r['full_load_window_s']:.1f} s", ""))
    rows.append(("gateway RSS ready / before / full load", f"{r['rss_ready_mb']} / "
                 f"{r['rss_before_mb']} / {r['rss_full_load_mb']} MB", ""))  # fmt: skip
    if per_stream is not None:
        rows.append(
            ("RSS per open stream", f"{per_stream:.1f} KB", f"<= {TARGET_RSS_PER_STREAM_KB} KB: "
             f"{verdict(per_stream <= TARGET_RSS_PER_STREAM_KB)}")
        )  # fmt: skip
    rows.append(
        ("added latency per event, full load", f"p50 {r['event_latency_p50_ms']} ms, "
         f"p99 {r['event_latency_p99_ms']} ms ({r['events_measured']} events)", "")
    )  # fmt: skip
    rows.append(("gateway CPU", f"{r['gateway_cpu_s']:.1f} s in {r['elapsed_s']:.0f} s "
                 f"({100 * (r['gateway_cpu_share'] or 0):.0f} % of a core); at full load "
                 f"{100 * (r['gateway_cpu_share_full_load'] or 0):.0f} %", ""))  # fmt: skip
    per_event = r["gateway_cpu_ms_per_event_full_load"]
    if per_event:
        rows.append(("gateway CPU per relayed event, full load", f"{per_event:.3f} ms (one core: "
                     f"{1000 / per_event:,.0f} events/s)", ""))  # fmt: skip
    waits = (100 * (r["gateway_run_queue_wait_share"] or 0), 100 * (r["gateway_run_queue_wait_share_full_load"] or 0))
    rows.append(("gateway event loop runnable, waiting for CPU", f"{waits[0]:.0f} % of the run, {waits[1]:.0f} % at "
                 "full load (other processes)", ""))  # fmt: skip
    rows.append(("fake provider CPU / this client's CPU", f"{r['fake_provider_cpu_s']:.1f} s / "
                 f"{r['client_cpu_s_total']:.1f} s", ""))  # fmt: skip
    rows.append(("client loop lag after the ramp", f"p50 {r['client_loop_lag_p50_ms']} ms, "
                 f"p99 {r['client_loop_lag_p99_ms']} ms (part of the latency above)", ""))  # fmt: skip
    print_table(f"long streams: {r['streams']} streams, one event every {r['stream_interval_s']} s, "
                f"{r['events_per_stream']} events each, opened at {r['ramp_rate_per_s']:.0f}/s", rows)  # fmt: skip
    limits = ", ".join(f"{k}={v}" for k, v in r["gateway_limits"].items())
    print(f"gateway limits set: {limits}; RLIMIT_NOFILE {r['rlimit_nofile']}")
    if r["log_tail"]:
        print(f"gateway log (last lines):\n{r['log_tail']}")


# --- scenario 2: a big catalogue ---------------------------------------------------------------


def models_latency(port: int, requests: int, encoding: str = "gzip") -> tuple[list[float], int, int, int]:
    """GET /v1/models over one keep-alive connection, with ``Accept-Encoding: encoding`` (the
    openai and anthropic SDKs send gzip); (latencies ms, body bytes, bytes on the wire, models)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    size = wire = count = 0
    try:
        for _ in range(requests):
            start = time.perf_counter()
            connection.request("GET", "/v1/models", headers={"Accept-Encoding": encoding})
            response = connection.getresponse()
            body = response.read()
            # Until the last byte arrived: what the gateway serves; the client's gunzip is its own.
            latencies.append((time.perf_counter() - start) * 1000)
            wire = len(body)
            if response.getheader("content-encoding") == "gzip":
                body = gzip.decompress(body)
            if response.status != 200:
                raise bench.BenchError(f"/v1/models answered {response.status}: {body[:200]!r}")
            size = len(body)
        count = len(json.loads(body)["data"])
    finally:
        connection.close()
    return latencies, size, wire, count


def wait_for_models(port: int, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        *_, count = models_latency(port, 1)
        if count >= expected:
            return count
        time.sleep(0.5)
    raise bench.BenchError(f"the gateway lists {count} models after {timeout:.0f} s, expected {expected}")


def idle_rebuild_cpu(setup: Setup, data_dir: Path, pid: int, settle: float) -> tuple[float, float]:
    """The gateway's own CPU for one rebuild, idle: its CPU from just before a version bump until
    ``settle`` s after, minus what it spends in as long with no bump (pollers, flushers).
    Returns (rebuild CPU s, idle CPU s per second)."""
    start, before = time.monotonic(), bench.cpu_seconds(pid)
    time.sleep(settle)
    idle_rate = (bench.cpu_seconds(pid) - before) / (time.monotonic() - start)
    start, before = time.monotonic(), bench.cpu_seconds(pid)
    db_helper(setup, data_dir, "bump", setup.args.bump_kind)
    time.sleep(settle)
    return bench.cpu_seconds(pid) - before - idle_rate * (time.monotonic() - start), idle_rate


def chat_script(directory: Path, model: str) -> Path:
    """wrk's JSON chat script (as bench/run.py writes it) for one model of the catalogue."""
    path = bench.write_scripts(directory, suffix="_catalogue")["json"]
    path.write_text(
        path.read_text().replace(json.dumps(bench.CHAT_BODY), json.dumps({**bench.CHAT_BODY, "model": model}))
    )
    return path


WINDOW_FIELDS = ("rps", "p50_ms", "p99_ms", "errors", "non_2xx")


def wait_idle(pid: int, idle_rate: float, timeout: float = 60.0) -> float:
    """Wait until the gateway's CPU over half a second is back near ``idle_rate`` (at most
    ``timeout``); return how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before, at = bench.cpu_seconds(pid), time.monotonic()
        time.sleep(0.5)
        if (bench.cpu_seconds(pid) - before) / (time.monotonic() - at) <= idle_rate + 0.1:
            break
    return round(time.monotonic() - started, 1)


def chat_window(setup: Setup, url: str, script: Path, target: str) -> dict:
    """One wrk run (c=8, JSON chat) through the gateway, as plain figures."""
    output = bench.run_wrk(url, script, 8, setup.args.duration, setup.load_cpu)
    measured = bench.parse_wrk(output, bench.Measurement(target, "json", 8))
    return {field: getattr(measured, field) for field in WINDOW_FIELDS}


def median_window(rounds: list[dict]) -> dict:
    """Each figure's median over the rounds; errors are summed."""
    from statistics import median

    merged = {field: round(median(r[field] for r in rounds), 2) for field in ("rps", "p50_ms", "p99_ms")}
    merged.update(errors=sum(r["errors"] for r in rounds), non_2xx=sum(r["non_2xx"] for r in rounds))
    return merged


class Bumper:
    """``scale.py _db bump-serve``: forces rebuilds (``--bump-kind``) every ``--bump-interval``
    seconds while told ``go``, none after ``pause``; ``finish`` returns how many it made."""

    def __init__(self, setup: Setup, data_dir: Path) -> None:
        args = setup.args
        self.process = db_helper_start(setup, data_dir, "bump-serve", args.bump_kind, str(args.bump_interval))
        line = self._read_line(timeout=120)
        if line.strip() != "ready":
            raise bench.BenchError(f"bump-serve did not start: {line.strip() or self.process.stderr.read()[-2000:]}")

    def _read_line(self, timeout: float) -> str:
        signal.signal(signal.SIGALRM, bench._alarm)
        signal.alarm(int(timeout))
        try:
            return self.process.stdout.readline()
        finally:
            signal.alarm(0)

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def finish(self) -> int:
        out, err = self.process.communicate(input="", timeout=120)
        if self.process.returncode != 0:
            raise bench.BenchError(f"bump-serve failed: {err[-2000:]}")
        return json.loads(out.strip().splitlines()[-1])["bumps"]


def scenario_catalogue(setup: Setup) -> dict:
    args = setup.args
    routes = args.backends * args.models
    distinct = min(args.distinct_ids, routes)
    with tempfile.TemporaryDirectory(prefix="eldric-scale-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        _fake, fake_port = start_fake(setup)
        try:
            gateway, port = start_gateway(
                setup, fake_port=fake_port, data_dir=data_dir, log_path=tmp_path / "gw.log", env_extra={}
            )
            pid = gateway.pid
            rss_ready = bench.memory_kib(pid).get("VmRSS", 0)
            # Inserted once the gateway is up: start-up discovery would replace the catalogue
            # with what the fake provider lists.
            filled = db_helper(
                setup, data_dir, "catalogue", str(args.backends), str(args.models), str(distinct), str(fake_port)
            )
            models = wait_for_models(port, distinct, timeout=120)
            timing = db_helper(setup, data_dir, "time-snapshot", str(args.rebuild_repeat), args.bump_kind)
            rebuild_cpu, idle_cpu = idle_rebuild_cpu(setup, data_dir, pid, settle=3.0)
            latencies, size, wire, _ = models_latency(port, args.models_requests, args.models_encoding)
            rss_loaded = bench.memory_kib(pid).get("VmRSS", 0)
            # A model of the catalogue, routed to one of its backends (all point at the fake).
            chat_model = f"{CATALOGUE_PREFIX}-model-{distinct // 2:06d}"
            script = chat_script(tmp_path, chat_model)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            status, headers, _ = bench._post(url, {**bench.CHAT_BODY, "model": chat_model})
            if status != 200 or not headers.get("x-eldric-backend", "").startswith(CATALOGUE_PREFIX):
                backend = headers.get("x-eldric-backend")
                raise bench.BenchError(f"chat for {chat_model} answered {status} from {backend}")
            bench.run_wrk(url, script, 8, args.warmup, setup.load_cpu)
            # The bumper is a Django process pinned with the load: started (and its imports done)
            # before anything is measured, so only its bumps fall into the rebuild windows.
            bumper = Bumper(setup, data_dir)
            try:
                quiet_rounds, busy_rounds = [], []
                settled = []
                for _ in range(args.rounds):
                    quiet_rounds.append(chat_window(setup, url, script, "gateway"))
                    bumper.send("go")
                    busy_rounds.append(chat_window(setup, url, script, "gateway+rebuilds"))
                    bumper.send("pause")
                    # A gateway whose rebuilds fell behind goes on rebuilding after the pause:
                    # the next run without rebuilds starts once it is idle again.
                    settled.append(wait_idle(pid, idle_cpu))
                bumps = bumper.finish()
            finally:
                setup.children.stop(bumper.process)
            alive = gateway.poll() is None
        finally:
            setup.children.stop_all()
    # Rounds alternate, so a machine that got busier or quieter weighs on both sides alike.
    quiet, busy = median_window(quiet_rounds), median_window(busy_rounds)
    ratio = busy["p99_ms"] / quiet["p99_ms"] if quiet["p99_ms"] else float("inf")
    result = {
        "scenario": "catalogue",
        "backends": args.backends,
        "models_per_backend": args.models,
        "routes": routes,
        "distinct_model_ids": distinct,
        "models_listed": models,
        "fill_seconds": filled["seconds"],
        "snapshot": timing,
        "gateway_rebuild_cpu_s": round(rebuild_cpu, 3),
        "gateway_idle_cpu_share": round(idle_cpu, 4),
        "models_body_bytes": size,
        "models_wire_bytes": wire,
        "models_encoding": args.models_encoding,
        "models_requests": args.models_requests,
        "models_p50_ms": round(percentile(latencies, 0.5), 2),
        "models_p99_ms": round(percentile(latencies, 0.99), 2),
        "rss_ready_mb": round(rss_ready / 1024, 1),
        "rss_loaded_mb": round(rss_loaded / 1024, 1),
        "chat_model": chat_model,
        "chat_quiet": quiet,
        "chat_rebuilding": busy,
        "chat_rounds": {"quiet": quiet_rounds, "rebuilding": busy_rounds},
        # Seconds the gateway went on rebuilding after each pause (its rebuilds fell behind).
        "settle_s": settled,
        "bump_interval_s": args.bump_interval,
        "bump_kind": args.bump_kind,
        "code": code_path(setup),
        "rebuilds_forced": bumps,
        "p99_ratio": round(ratio, 2),
        "gateway_alive": alive,
    }
    print_catalogue(result)
    return result


def print_catalogue(r: dict) -> None:
    timing, quiet, busy = r["snapshot"], r["chat_quiet"], r["chat_rebuilding"]
    rebuild = timing["routing_build_s"]["median"]
    rows = [("figure", "value", "target")]
    rows.append(("catalogue", f"{r['backends']} backends x {r['models_per_backend']} models = {r['routes']} routes, "
                 f"{r['distinct_model_ids']} model ids; filled in {r['fill_seconds']:.1f} s", ""))  # fmt: skip
    rows.append(
        ("routing snapshot rebuild (in-process, CPU 1)", f"median {rebuild:.3f} s, min "
         f"{timing['routing_build_s']['min']:.3f} s", f"< {TARGET_REBUILD_S} s: {verdict(rebuild < TARGET_REBUILD_S)}")
    )  # fmt: skip
    rows.append(("  of which the SQL rows", f"{timing['rows_query_s']['median']:.3f} s", ""))
    if "incremental_build_s" in timing:
        incremental = timing["incremental_build_s"]
        rows.append(
            (f"rebuild after one '{timing['incremental_kind']}' change (in-process, kept state)",
             f"median {incremental['median']:.3f} s, min {incremental['min']:.3f} s", "")
        )  # fmt: skip
    rows.append(("rebuilds follow", f"{r['bump_kind']}: {BUMP_KINDS[r['bump_kind']]}", ""))
    rows.append(("rebuild CPU inside the gateway (one bump)", f"{r['gateway_rebuild_cpu_s']:.3f} s", ""))
    p50, p99 = r["models_p50_ms"], r["models_p99_ms"]
    rows.append(
        ("GET /v1/models", f"p50 {p50} ms, p99 {p99} ms ({r['models_body_bytes'] / 1e6:.1f} MB, "
         f"{r['models_wire_bytes'] / 1e6:.2f} MB sent as {r['models_encoding']}, {r['models_listed']} "
         f"models, {r['models_requests']} requests)", f"< {TARGET_MODELS_MS} ms: {verdict(p99 < TARGET_MODELS_MS)}")
    )  # fmt: skip
    rounds = r["chat_rounds"]
    rows.append(("chat c=8 JSON, no rebuilds", f"{quiet['rps']:.0f} req/s, p50 {quiet['p50_ms']:.2f} ms, "
                 f"p99 {quiet['p99_ms']:.2f} ms (median of {len(rounds['quiet'])} runs; p99s "
                 f"{', '.join(str(w['p99_ms']) for w in rounds['quiet'])})", ""))  # fmt: skip
    rows.append(
        (f"chat c=8 JSON, a rebuild every {r['bump_interval_s']:g} s", f"{busy['rps']:.0f} req/s, p50 "
         f"{busy['p50_ms']:.2f} ms, p99 {busy['p99_ms']:.2f} ms ({r['rebuilds_forced']} rebuilds; p99s "
         f"{', '.join(str(w['p99_ms']) for w in rounds['rebuilding'])})", "")
    )  # fmt: skip
    rows.append(("gateway busy after each pause in rebuilds", ", ".join(f"{x:g} s" for x in r["settle_s"]), ""))
    ratio = r["p99_ratio"]
    rows.append(("p99 with rebuilds / without", f"{ratio:.2f}x", f"<= {TARGET_P99_RATIO}x: "
                 f"{verdict(ratio <= TARGET_P99_RATIO)}"))  # fmt: skip
    rows.append(("gateway RSS ready / with the catalogue", f"{r['rss_ready_mb']} / {r['rss_loaded_mb']} MB", ""))
    errors = quiet["errors"] + quiet["non_2xx"] + busy["errors"] + busy["non_2xx"]
    rows.append(("chat errors", str(errors), f"0: {verdict(not errors)}"))
    print_table("big catalogue", rows)


# --- scenario 3: many keys ---------------------------------------------------------------------


def wait_for_key(port: int, key: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        request = bench.urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(bench.CHAT_BODY).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
            method="POST",
        )
        try:
            with bench.LOCAL_OPENER.open(request, timeout=10) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise bench.BenchError(f"the gateway did not accept the new key after {timeout:.0f} s ({last})")


def scenario_keys(setup: Setup) -> dict:
    args = setup.args
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="eldric-scale-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        _fake, fake_port = start_fake(setup)
        try:
            gateway, port = start_gateway(
                setup, fake_port=fake_port, data_dir=data_dir, log_path=tmp_path / "gw.log", env_extra={}
            )
            pid = gateway.pid
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            have = 0
            for count in args.key_counts:
                # Grow the table to ``count`` keys; the last one made is the key requests use.
                added = db_helper(setup, data_dir, "keys", str(count - have))
                have = count
                seen = time.monotonic()
                wait_for_key(port, added["key"])
                seen = time.monotonic() - seen
                timing = db_helper(setup, data_dir, "time-snapshot", str(args.rebuild_repeat), args.bump_kind)
                scripts = bench.write_scripts(tmp_path, added["key"], f"_{count}")
                bench.run_wrk(url, scripts["json"], 8, args.warmup, setup.load_cpu)
                before = bench.cpu_seconds(pid)
                measured = bench.parse_wrk(
                    bench.run_wrk(url, scripts["json"], 8, args.duration, setup.load_cpu),
                    bench.Measurement("gateway+key", "json", 8),
                )
                cpu_ms = (bench.cpu_seconds(pid) - before) * 1000 / max(measured.requests, 1)
                rows_out.append(
                    {
                        "keys": count,
                        "fill_seconds": added["seconds"],
                        "key_usable_after_s": round(seen, 2),
                        "access_build_s": timing["access_build_s"],
                        "rps": measured.rps,
                        "p50_ms": measured.p50_ms,
                        "p99_ms": measured.p99_ms,
                        "errors": measured.errors + measured.non_2xx,
                        "cpu_ms_per_request": round(cpu_ms, 3),
                        "rss_mb": round(bench.memory_kib(pid).get("VmRSS", 0) / 1024, 1),
                        "load_average": load_average(),
                    }
                )
            alive = gateway.poll() is None
        finally:
            setup.children.stop_all()
    cpu = [r["cpu_ms_per_request"] for r in rows_out]
    spread = (max(cpu) - min(cpu)) / min(cpu) if cpu and min(cpu) else float("inf")
    # The slope that matters: the most keys against the fewest (noise moves either way, growth only up).
    growth = cpu[-1] / cpu[0] if cpu and cpu[0] else float("inf")
    result = {
        "scenario": "keys",
        "counts": rows_out,
        "cpu_spread": round(spread, 3),
        "cpu_most_over_fewest": round(growth, 3),
        "gateway_alive": alive,
    }
    table = [("keys", "CPU ms/req c=8 JSON", "req/s, p50, p99, errors; access rebuild; key usable after; RSS")]
    for r in rows_out:
        table.append(
            (f"{r['keys']:,}", f"{r['cpu_ms_per_request']:.3f}",
             f"{r['rps']:.0f}, {r['p50_ms']:.2f} ms, {r['p99_ms']:.2f} ms, {r['errors']}; "
             f"{r['access_build_s']['median']:.3f} s; {r['key_usable_after_s']} s; {r['rss_mb']} MB "
             f"(load {r['load_average']})")
        )  # fmt: skip
    print_table("many keys: one key of N, c=8 JSON", table)
    print(
        f"CPU/request spread over the counts: {100 * spread:.0f} % (flat within {100 * FLAT_TOLERANCE:.0f} %: "
        f"{verdict(spread <= FLAT_TOLERANCE)}); {rows_out[-1]['keys']:,} keys / {rows_out[0]['keys']:,}: "
        f"{growth:.2f}x (no growth: {verdict(growth <= 1 + FLAT_TOLERANCE)})"
    )
    return result


# --- the Django helper (run with the project's venv, against the gateway's database) ------------


def _db_main(argv: list[str]) -> int:
    import django

    django.setup()
    from django.db import transaction

    action, rest = argv[0], argv[1:]
    started = time.perf_counter()
    if action == "catalogue":
        return _db_catalogue(*(int(x) for x in rest), started=started)
    if action == "keys":
        return _db_keys(int(rest[0]), started=started)
    if action == "time-snapshot":
        return _db_time_snapshot(int(rest[0]), rest[1])
    if action == "bump-serve":
        return _db_bump_serve(rest[0], float(rest[1]))
    if action == "bump":
        # One rebuild in the gateway, forced the way a backend change does it (``BUMP_KINDS``).
        with transaction.atomic():
            _db_change(rest[0], 0)
        print(json.dumps({"bumps": 1, "seconds": round(time.perf_counter() - started, 2)}))
        return 0
    print(f"unknown _db action {action!r}", file=sys.stderr)
    return 2


def _db_bump_serve(kind: str, interval: float) -> int:
    """Read ``go``/``pause`` lines on stdin; while going, one change of ``kind`` (and a rebuild in
    the gateway) every ``interval`` seconds. At end of input, print how many were made."""
    import select

    from django.db import connection, transaction

    print("ready", flush=True)
    going, bumps, due = False, 0, 0.0
    while True:
        wait = max(0.0, due - time.monotonic()) if going else None
        readable, _, _ = select.select([sys.stdin], [], [], wait)
        if readable:
            line = sys.stdin.readline()
            if not line:
                break
            going = line.strip() == "go"
            due = time.monotonic()
            continue
        with transaction.atomic():
            _db_change(kind, bumps)
        bumps += 1
        due += interval
    connection.close()
    print(json.dumps({"bumps": bumps}))
    return 0


def _db_change(kind: str, count: int) -> None:
    """One change of ``kind`` (``BUMP_KINDS``), the ``count``-th, then the routing version bump."""
    from django.db.models import F

    from backends.models import Backend
    from backends.services import routing_version_bump

    if kind != "none":
        names = list(
            Backend.objects.filter(name__startswith=CATALOGUE_PREFIX).order_by("name").values_list("name", flat=True)
        )
        name = names[count % len(names)]
    if kind == "probe":
        # What ``backend_health_record`` writes for a successful probe (each one bumps the version).
        Backend.objects.filter(name=name).update(
            healthy_probe_count=F("healthy_probe_count") + 1, latency_ms=10.0 + count % 7, health_status="healthy"
        )
    elif kind == "models":
        # Discovery found one model gone and one new on one backend.
        from backends.providers.base import ModelInfo
        from backends.services import backend_models_sync

        backend = Backend.objects.get(name=name)
        listed = sorted(backend.models.values_list("model_id", "created"))
        kept = [ModelInfo(id=model_id, created=created) for model_id, created in listed[1:]]
        backend_models_sync(backend=backend, models=[*kept, ModelInfo(id=f"{name}-new-{count}", created=1_764_201_601)])
        return  # the sync bumped the version
    elif kind == "reorder":
        # Every backend's priority moves one place round: every model's order changes.
        rotated = names[count % len(names) :] + names[: count % len(names)]
        rows = list(Backend.objects.filter(name__in=names))
        place = {name: position for position, name in enumerate(rotated)}
        for row in rows:
            row.priority = 100 + place[row.name]
        Backend.objects.bulk_update(rows, ["priority"], batch_size=500)
    routing_version_bump()


def _db_catalogue(backends: int, models: int, distinct: int, fake_port: int, *, started: float) -> int:
    from django.db import transaction

    from backends.models import Backend, BackendSource, DiscoveredModel, HealthStatus
    from backends.services import routing_version_bump
    from orgs.services import default_organisation_pk

    organisation = default_organisation_pk()
    url = f"http://127.0.0.1:{fake_port}/v1"
    with transaction.atomic():
        made = Backend.objects.bulk_create(
            [
                Backend(
                    name=f"{CATALOGUE_PREFIX}-{index:04d}",
                    organisation_id=organisation,
                    url=url,
                    priority=100 + index,
                    source=BackendSource.API,
                    health_status=HealthStatus.HEALTHY,
                )
                for index in range(backends)
            ],
            batch_size=500,
        )
        names = [b.name for b in made]
        ids = list(Backend.objects.filter(name__in=names).order_by("name").values_list("id", flat=True))
        batch: list[DiscoveredModel] = []
        created = 1_764_201_600
        for position, backend_id in enumerate(ids):
            # (position * models + j) % distinct: every backend lists ``models`` different ids,
            # and with distinct < routes the ids are shared between backends.
            for j in range(models):
                number = (position * models + j) % distinct
                batch.append(
                    DiscoveredModel(
                        backend_id=backend_id, model_id=f"{CATALOGUE_PREFIX}-model-{number:06d}", created=created
                    )
                )
            if len(batch) >= 20_000:
                DiscoveredModel.objects.bulk_create(batch, batch_size=2_000)
                batch = []
        DiscoveredModel.objects.bulk_create(batch, batch_size=2_000)
        routing_version_bump()
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "backends": len(ids)}))
    return 0


def _db_keys(count: int, *, started: float) -> int:
    import hashlib

    from django.db import transaction

    from orgs.keys import DISPLAY_PREFIX_LENGTH, KEY_PREFIX, key_generate, key_hash
    from orgs.models import ClientKey
    from orgs.services import access_version_bump, default_organisation_pk

    organisation = default_organisation_pk()
    key = key_generate()
    rows = []
    for index in range(count - 1):
        # Keys nobody will use: their hashes are all the table holds, so random digests will do.
        digest = hashlib.sha256(os.urandom(32)).hexdigest()
        rows.append(ClientKey(organisation_id=organisation, name=f"scale-{index}", prefix=digest[:8], key_hash=digest))
    rows.append(
        ClientKey(
            organisation_id=organisation,
            name="scale-used",
            prefix=key[len(KEY_PREFIX) :][:DISPLAY_PREFIX_LENGTH],
            key_hash=key_hash(key),
        )
    )
    with transaction.atomic():
        ClientKey.objects.bulk_create(rows, batch_size=2_000)
        access_version_bump()
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "key": key}))
    return 0


def _incremental_timing(kind: str, repeat: int) -> dict:
    """How long the refresher's rebuild takes after one change of ``kind``, with what it kept
    from the build before (a build that has no assembler to keep: absent)."""
    try:
        from backends.snapshot import SnapshotAssembler
    except ImportError:
        return {}
    from statistics import median

    from backends.selectors import routing_snapshot_build

    assembler = SnapshotAssembler()
    routing_snapshot_build(assembler=assembler)
    times = []
    for count in range(repeat * 3):
        _db_change(kind, 1000 + count)
        start = time.perf_counter()
        routing_snapshot_build(assembler=assembler)
        times.append(time.perf_counter() - start)
    return {
        "incremental_kind": kind,
        "incremental_build_s": {"min": round(min(times), 4), "median": round(median(times), 4)},
    }


def _db_time_snapshot(repeat: int, kind: str) -> int:
    from statistics import median

    from django.db import connection

    from backends.models import DiscoveredModel
    from backends.selectors import routing_snapshot_build
    from gateway.snapshot import SnapshotSource
    from orgs.access import access_snapshot_build

    def timed(function) -> dict:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return {"min": round(min(times), 4), "median": round(median(times), 4), "max": round(max(times), 4)}

    def rows() -> None:
        list(
            DiscoveredModel.objects.order_by("backend_id", "model_id").values_list("backend_id", "model_id", "created")
        )

    start = time.perf_counter()
    source = SnapshotSource()
    source.refresh()  # what a gateway does at start: access and prices, then routing
    first = time.perf_counter() - start
    result = {
        "first_refresh_s": round(first, 4),
        "routing_build_s": timed(routing_snapshot_build),
        "rows_query_s": timed(rows),
        "access_build_s": timed(access_snapshot_build),
        **_incremental_timing(kind, repeat),
        "routes": sum(len(r) for r in source.current.model_routes.values()),
        "keys": len(source.access.keys),
    }
    connection.close()
    print(json.dumps(result))
    return 0


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Scale scenarios of issue 14 against one eldric-cloudd process.")
    parser.add_argument("scenario", choices=("streams", "catalogue", "keys", "all"))
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne", help="default daphne")
    parser.add_argument("--json", metavar="FILE", help="also write the figures (and the machine) to FILE")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes with taskset")
    parser.add_argument("--gateway-cmd", help="command that runs eldric-cloudd (default .venv/bin/eldric-cloudd)")
    parser.add_argument("--repo", help="checkout whose code the gateway and the database helpers import (default "
                        "this one; e.g. the build before, from git worktree add)")  # fmt: skip
    parser.add_argument("--python", default=sys.executable, help="interpreter for the fake provider")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for /health")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds: streams held at full load (default 30); each wrk run (default 10)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=2.0, help="wrk warm-up seconds (default 2)")
    parser.add_argument("--rebuild-repeat", type=int, default=3, help="in-process snapshot timings (default 3)")
    streams = parser.add_argument_group("streams")
    streams.add_argument("--streams", type=int, default=5000, help="concurrent streams (default 5000)")
    streams.add_argument("--stream-interval", type=float, default=1.0, help="seconds between events (default 1)")
    streams.add_argument("--ramp-rate", type=float, default=100.0, help="streams opened per second (default 100)")
    streams.add_argument("--py-spy", metavar="BIN", help="record the gateway with this py-spy at full load")
    streams.add_argument("--profile-out", default="scale-profile.txt", help="py-spy raw output (with --py-spy)")
    catalogue = parser.add_argument_group("catalogue")
    catalogue.add_argument("--backends", type=int, default=500, help="backends (default 500)")
    catalogue.add_argument("--models", type=int, default=200, help="models per backend (default 200)")
    catalogue.add_argument("--distinct-ids", type=int, default=100_000,
                           help="distinct model ids (default 100000: no model on two backends; 200: every "
                                "backend lists the same 200)")  # fmt: skip
    catalogue.add_argument("--models-requests", type=int, default=200, help="GET /v1/models requests (default 200)")
    catalogue.add_argument("--models-encoding", default="gzip", help="Accept-Encoding of the /v1/models "
                           "requests (default gzip, as the SDKs send; identity for the plain body)")  # fmt: skip
    catalogue.add_argument("--bump-interval", type=float, default=2.0, help="seconds between forced rebuilds")
    catalogue.add_argument("--rounds", type=int, default=2, help="alternating chat runs without and with rebuilds "
                           "(each --duration; default 2)")  # fmt: skip
    kinds = "; ".join(f"{kind}: {what}" for kind, what in BUMP_KINDS.items())
    catalogue.add_argument(
        "--bump-kind", choices=BUMP_KINDS, default="probe", help=f"what each rebuild follows: {kinds}"
    )
    keys = parser.add_argument_group("keys")
    keys.add_argument("--key-counts", default="10,1000,10000,100000", help="comma-separated key counts")
    args = parser.parse_args(argv)
    try:
        args.key_counts = sorted(int(c) for c in args.key_counts.split(",") if c.strip())
    except ValueError:
        parser.error("--key-counts: comma-separated integers")
    if not args.key_counts or args.key_counts[0] < 1 or len(set(args.key_counts)) != len(args.key_counts):
        parser.error("--key-counts: distinct counts, each at least 1")
    if args.streams < 1 or args.stream_interval <= 0 or args.ramp_rate <= 0:
        parser.error("--streams, --stream-interval and --ramp-rate must be positive")
    if args.distinct_ids < args.models:
        parser.error("--distinct-ids must be at least --models (a backend lists each id once)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.rebuild_repeat < 1:
        parser.error("--rebuild-repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_db"]:
        return _db_main(argv[1:])
    args = parse_args(argv)
    if args.scenario in ("catalogue", "keys", "all") and shutil.which("wrk") is None:
        print("scale: wrk is not installed. On Debian/Ubuntu: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, bench._terminate)
    setup = Setup(args)
    pin_self(setup.load_cpu)
    scenarios = ("streams", "catalogue", "keys") if args.scenario == "all" else (args.scenario,)
    results = []
    pinned = "gateway CPU 0, load CPU 1" if setup.pinned else "no"
    print(f"load average at start: {load_average()}; pinned: {pinned}")
    try:
        for name in scenarios:
            scenario_args = argparse.Namespace(**vars(args))
            if scenario_args.duration is None:
                scenario_args.duration = 30.0 if name == "streams" else 10.0
            setup.args = scenario_args
            result = {"streams": scenario_streams, "catalogue": scenario_catalogue, "keys": scenario_keys}[name](setup)
            result["load_average_after"] = load_average()
            results.append(result)
            print(f"load average after {name}: {result['load_average_after']}")
            sys.stdout.flush()
    except bench.BenchError as exc:
        print(f"scale: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scale: interrupted", file=sys.stderr)
        return 130
    finally:
        setup.children.stop_all()
        if args.json and results:
            meta = {
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "nproc": os.cpu_count(),
                "cpu": bench._cpu_model(),
                "server": args.server,
                "results": results,
            }
            Path(args.json).write_text(json.dumps(meta, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
