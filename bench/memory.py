"""What ``make run`` costs in memory: every process eldric-cloudd starts, idle and under load (issue 14).

Stdlib only, like ``bench/run.py``, whose process handling, fake provider and wrk driver it reuses.
It starts ``eldric-cloudd`` as ``make run`` does (the embedded Celery worker with its beat, SQLite,
no Redis) in a fresh temporary data dir, with no backends (``make run``'s default) or ``--backends
N`` backends on one fake provider. Once ``/health`` answers it waits ``--settle`` seconds, then
reads every process of its tree:

- **RSS** (``VmRSS`` in ``/proc/<pid>/status``): the resident pages each process maps, counted in
  full in every process that maps them. Pages a fork shares are counted once per process, so the
  RSS sum over-counts; it is the figure the issue's table (and the peer harness) sums.
- **PSS** (``Pss`` in ``/proc/<pid>/smaps_rollup``): each shared page divided among the
  processes sharing it. The PSS sum is what the tree really holds.
- **USS** (``Private_Clean + Private_Dirty``): what only that process holds; what stopping it frees.

With ``--load`` it then drives chat completions through the gateway with wrk (JSON, then SSE, at
each ``--concurrency``), sampling the tree every ``--interval`` seconds, and reports the peaks of
the sums and of each process.

    .venv/bin/python bench/memory.py                       # idle, make run's defaults
    .venv/bin/python bench/memory.py --backends 2 --load   # two backends, then under load
    .venv/bin/python bench/memory.py --runs 3 --json var/memory.json
    .venv/bin/python bench/memory.py --backends 2 -- --server uvicorn
    .venv/bin/python bench/memory.py --env PYTHONPATH=/path/to/another/checkout   # another build
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (bench/run.py: processes, fake provider, wrk, /proc)

# The goals of issue 14, in MB (1 MB = 1024 KiB, as the table and VmRSS / 1024).
GOAL_TREE_IDLE_MB = 200
GOAL_TREE_PEAK_MB = 198  # Portkey's peak under load in the table
GOAL_GATEWAY_MB = 100


# --- /proc -----------------------------------------------------------------------------


@dataclass
class ProcessMemory:
    pid: int
    ppid: int
    role: str
    rss_kib: int = 0
    pss_kib: int = 0
    uss_kib: int = 0
    hwm_kib: int = 0  # VmHWM: this process's peak RSS over its whole life, start-up included
    threads: int = 0


def _status(pid: int) -> dict[str, str]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = rest.strip()
    return values


def _rollup(pid: int) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            with contextlib.suppress(ValueError, IndexError):
                values[key] = int(rest.split()[0])
    return values


def _kib(text: str) -> int:
    return int(text.split(maxsplit=1)[0]) if text else 0


def role_of(pid: int, root: int, ppid: int, parents: dict[int, int]) -> str:
    """What a process of eldric-cloudd's tree is, from its command line and its place in the tree."""
    if pid == root:
        return "gateway (eldric-cloudd)"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = ""
    if "embedded_worker" in cmdline or "celery" in cmdline:
        # Celery's embedded beat is a fork of the worker: same command line, one level down.
        return "celery beat (forked)" if parents.get(ppid) == root else "celery worker"
    return cmdline[:40] or "?"


def tree(root: int) -> list[ProcessMemory]:
    pids = [root, *bench.descendants(root)]
    parents = {pid: int(_status(pid).get("PPid", "0") or 0) for pid in pids}
    found = []
    for pid in pids:
        status, rollup = _status(pid), _rollup(pid)
        if not status:
            continue  # exited meanwhile
        found.append(
            ProcessMemory(
                pid=pid,
                ppid=parents[pid],
                role=role_of(pid, root, parents[pid], parents),
                rss_kib=_kib(status.get("VmRSS", "")),
                pss_kib=rollup.get("Pss", 0),
                uss_kib=rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0),
                hwm_kib=_kib(status.get("VmHWM", "")),
                threads=int(status.get("Threads", "0") or 0),
            )
        )
    return found


def totals(processes: list[ProcessMemory]) -> dict[str, int]:
    return {
        "rss_kib": sum(p.rss_kib for p in processes),
        "pss_kib": sum(p.pss_kib for p in processes),
        "uss_kib": sum(p.uss_kib for p in processes),
    }


class PeakSampler(threading.Thread):
    """Samples the tree every ``interval`` s while the load runs; keeps the peak of each sum and
    each process's own peak RSS and PSS."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak = {"rss_kib": 0, "pss_kib": 0, "uss_kib": 0}
        self.per_role: dict[str, dict[str, int]] = {}
        self.samples = 0
        self._done = threading.Event()

    def sample(self) -> None:
        processes = tree(self.root)
        for key, value in totals(processes).items():
            self.peak[key] = max(self.peak[key], value)
        for p in processes:
            seen = self.per_role.setdefault(p.role, {"rss_kib": 0, "pss_kib": 0})
            seen["rss_kib"] = max(seen["rss_kib"], p.rss_kib)
            seen["pss_kib"] = max(seen["pss_kib"], p.pss_kib)
        self.samples += 1

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.sample()


# --- one run ---------------------------------------------------------------------------


@dataclass
class Run:
    index: int
    argv: list[str]
    idle: list[ProcessMemory] = field(default_factory=list)
    idle_totals: dict[str, int] = field(default_factory=dict)
    load: dict | None = None


def gateway_argv(args, *, port: int, data_dir: Path, fake_port: int | None) -> list[str]:
    """``eldric-cloudd`` as ``make run`` starts it (the embedded worker on), on a private port."""
    argv = [*bench.gateway_command(args), "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    if fake_port is not None and args.backends:
        specs = [f"bench{i + 1}:http://127.0.0.1:{fake_port}/v1:sk-bench-{i + 1}" for i in range(args.backends)]
        argv += ["--backends", ",".join(specs)]
    return [*argv, *args.extra]


def wait_ready(process: subprocess.Popen, port: int, log_path: Path, args) -> None:
    """``/health`` answers 200 (and lists models when there are backends), and the embedded
    worker, unless turned off, is among the children."""
    deadline = time.monotonic() + args.startup_timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise bench.BenchError(f"eldric-cloudd exited with {process.returncode}:\n{bench._tail(log_path)}")
        try:
            status, _, body = bench._get(f"http://127.0.0.1:{port}/health")
            health = json.loads(body)
            models_ok = not args.backends or health.get("models_available", 0) > 0
            worker_ok = "--no-worker" in args.extra or bench.descendants(process.pid)
            if status == 200 and models_ok and worker_ok:
                return
            last = body.decode(errors="replace")[:200]
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise bench.BenchError(
        f"eldric-cloudd not ready after {args.startup_timeout:.0f} s ({last}):\n{bench._tail(log_path)}"
    )


def drive_load(args, port: int, root: int, scripts: dict[str, Path]) -> dict:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    # Warm-up outside the measurement: pools, imports done on first use.
    bench.run_wrk(url, scripts["json"], 8, 2, None)
    sampler = PeakSampler(root, args.interval)
    sampler.sample()
    sampler.start()
    phases = []
    try:
        for mode in args.modes:
            for concurrency in args.concurrency:
                measured = bench.parse_wrk(
                    bench.run_wrk(url, scripts[mode], concurrency, args.duration, None),
                    bench.Measurement("gateway", mode, concurrency),
                )
                phases.append(
                    {
                        "mode": mode,
                        "concurrency": concurrency,
                        "requests": measured.requests,
                        "rps": measured.rps,
                        "errors": measured.errors + measured.non_2xx,
                    }
                )
    finally:
        sampler.stop()
    return {"peak": sampler.peak, "per_role": sampler.per_role, "samples": sampler.samples, "phases": phases}


def one_run(args, children: bench.Children, index: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="eldric-memory-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        fake = fake_port = None
        if args.backends or args.load:
            fake, fake_port = bench.start_fake_provider(children, args.python, None)
        port = bench._free_port()
        env = bench.gateway_env()
        env.update(args.env)
        argv = gateway_argv(args, port=port, data_dir=data_dir, fake_port=fake_port)
        log_path = tmp_path / "gateway.log"
        with log_path.open("w") as log:
            gateway = children.start(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(data_dir))
        run = Run(index=index, argv=argv)
        try:
            wait_ready(gateway, port, log_path, args)
            time.sleep(args.settle)  # the idle figure: nothing but the worker's schedule runs
            run.idle = tree(gateway.pid)
            run.idle_totals = totals(run.idle)
            if args.load:
                if not args.backends:
                    raise bench.BenchError("--load needs --backends 1 or more")
                run.load = drive_load(args, port, gateway.pid, bench.write_scripts(tmp_path))
            if gateway.poll() is not None:
                raise bench.BenchError(f"eldric-cloudd died during the run:\n{bench._tail(log_path)}")
        finally:
            children.stop(gateway)
            if fake is not None:
                children.stop(fake)
    return run


# --- report ----------------------------------------------------------------------------


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def verdict(value_kib: float, goal_mb: float) -> str:
    return f"{'met' if value_kib / 1024 <= goal_mb else 'missed'} (goal <= {goal_mb} MB)"


def print_run(run: Run) -> None:
    print(f"\nrun {run.index}: {' '.join(run.argv)}")
    rows = [("process", "pid", "threads", "RSS MB", "PSS MB", "USS MB", "peak RSS (VmHWM) MB")]
    for p in run.idle:
        rows.append((p.role, str(p.pid), str(p.threads), mb(p.rss_kib), mb(p.pss_kib), mb(p.uss_kib), mb(p.hwm_kib)))
    t = run.idle_totals
    label = f"sum, idle ({len(run.idle)} processes)"
    rows.append((label, "", "", mb(t["rss_kib"]), mb(t["pss_kib"]), mb(t["uss_kib"]), ""))
    _print_table(rows)
    if run.load:
        peak = run.load["peak"]
        print(f"under load ({run.load['samples']} samples):")
        rows = [("process", "peak RSS MB", "peak PSS MB")]
        for role, seen in run.load["per_role"].items():
            rows.append((role, mb(seen["rss_kib"]), mb(seen["pss_kib"])))
        rows.append(("peak of the sum", mb(peak["rss_kib"]), mb(peak["pss_kib"])))
        _print_table(rows)
        for phase in run.load["phases"]:
            errors = f", {phase['errors']} errors" if phase["errors"] else ""
            print(
                f"  {phase['mode']} c={phase['concurrency']}: {phase['requests']} requests, "
                f"{phase['rps']:.0f} req/s{errors}"
            )


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def print_goals(runs: list[Run]) -> None:
    def median(values: list[int]) -> float:
        return statistics.median(values) if values else 0

    gateway = median([p.rss_kib for r in runs for p in r.idle if p.pid == r.idle[0].pid])
    idle_rss = median([r.idle_totals["rss_kib"] for r in runs])
    idle_pss = median([r.idle_totals["pss_kib"] for r in runs])
    suffix = f" (median of {len(runs)} runs)" if len(runs) > 1 else ""
    print(f"\ngoals{suffix}:")
    print(
        f"  the tree idle, RSS summed: {mb(idle_rss)} MB, {verdict(idle_rss, GOAL_TREE_IDLE_MB)}; "
        f"PSS summed {mb(idle_pss)} MB"
    )
    print(f"  the gateway alone, RSS idle: {mb(gateway)} MB, {verdict(gateway, GOAL_GATEWAY_MB)}")
    loaded = [r.load for r in runs if r.load]
    if loaded:
        peak_rss = median([load["peak"]["rss_kib"] for load in loaded])
        peak_pss = median([load["peak"]["pss_kib"] for load in loaded])
        gateway_peak = median([load["per_role"]["gateway (eldric-cloudd)"]["rss_kib"] for load in loaded])
        print(
            f"  the tree under load, peak RSS summed: {mb(peak_rss)} MB, {verdict(peak_rss, GOAL_TREE_PEAK_MB)}; "
            f"peak PSS summed {mb(peak_pss)} MB"
        )
        print(
            f"  the gateway alone, peak RSS under load: {mb(gateway_peak)} MB, {verdict(gateway_peak, GOAL_GATEWAY_MB)}"
        )


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Memory of everything eldric-cloudd starts (as make run does), idle and under load.",
        epilog="Arguments after -- go to eldric-cloudd as they are (e.g. -- --server uvicorn, -- --no-worker).",
    )
    parser.add_argument(
        "--backends", type=int, default=0, help="backends on one fake provider (default 0, as make run)"
    )
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds after ready before the idle reading (default 10)"
    )
    parser.add_argument("--load", action="store_true", help="then drive load with wrk and report the peaks")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase (default 10)")
    parser.add_argument("--concurrency", default="8,64", help="wrk connections per phase (default 8,64)")
    parser.add_argument("--modes", default="json,sse", help="json, sse or both (default json,sse)")
    parser.add_argument(
        "--interval", type=float, default=0.25, help="seconds between samples under load (default 0.25)"
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat with a fresh gateway each time (default 1)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for eldric-cloudd"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every reading to FILE")
    parser.add_argument("--gateway-cmd", help="command that runs eldric-cloudd (default .venv/bin/eldric-cloudd)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the fake provider")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for /health")
    parser.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.env = dict(item.split("=", 1) for item in args.env)
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--env takes NAME=VALUE; --concurrency comma-separated integers")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(args.modes) - {"json", "sse"} or not args.concurrency or args.runs < 1 or args.backends < 0:
        parser.error("--modes json,sse; --concurrency at least one value; --runs >= 1; --backends >= 0")
    if args.load and shutil.which("wrk") is None:
        parser.error("--load needs wrk on PATH (Debian: apt-get install -y wrk)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    children = bench.Children()
    runs: list[Run] = []
    try:
        for index in range(1, args.runs + 1):
            runs.append(one_run(args, children, index))
            print_run(runs[-1])
            sys.stdout.flush()
    except bench.BenchError as exc:
        print(f"memory: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memory: interrupted", file=sys.stderr)
        return 130
    finally:
        children.stop_all()
    print_goals(runs)
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "settle": args.settle, "runs": [asdict(r) for r in runs]}
        Path(args.json).write_text(json.dumps(meta, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
