"""Benchmark eldric-cloudd against a fast fake OpenAI provider, with wrk.

Stdlib only. It installs nothing: wrk must be on PATH (Debian: ``apt-get install -y wrk``).
For each run it starts ``bench/fake_provider.py`` and one ``eldric-cloudd`` process (no
Celery worker, SQLite in a temporary data dir), then drives chat completions, JSON and
SSE, at each concurrency, first straight at the fake provider and then through the
gateway. It prints requests/s, p50/p99 latency, the p50 the gateway adds, the gateway's
CPU time per request and its peak RSS. All traffic stays on 127.0.0.1.

Pinning (when taskset exists and there are at least 2 CPUs): the gateway on CPU 0, the
fake provider and wrk on CPU 1, so the gateway has one core to itself.

    .venv/bin/python bench/run.py                       # Daphne, default transport
    .venv/bin/python bench/run.py --server uvicorn --transport httpx --duration 5
    .venv/bin/python bench/run.py --runs 3 --json var/bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODEL = "bench-small"
TARGET_ADDED_P50_MS = 1.5
TARGET_JSON_RPS_C8 = 600
# Issue 10: a limited client key (limits in Redis) against no auth, in the same run.
TARGET_KEY_ADDED_P50_MS = 0.3
TARGET_KEY_RPS_SHARE_C8 = 0.85
# Limits that are on (every request is counted in Redis) but never reached.
KEY_LIMITS = ["--rpm", "1000000000", "--tpm", "1000000000", "--max-concurrent", "100000"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

CHAT_BODY = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
        {"role": "user", "content": "Say hello to the benchmark in one short sentence, please."},
    ],
    "temperature": 0.2,
    "max_tokens": 64,
}


class BenchError(Exception):
    pass


# --- child processes -----------------------------------------------------------------


def _die_with_parent() -> None:
    # Linux: children get SIGTERM if this script is killed without cleaning up.
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """Every process this script starts, each in its own session; stopped by pid on exit."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent, **kwargs)  # noqa: PLW1509
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 10.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.processes)):
            self.stop(process)


def _pin(cpu: int | None) -> list[str]:
    if cpu is None:
        return []
    return ["taskset", "-c", str(cpu)]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fake_provider(children: Children, python: str, cpu: int | None) -> tuple[subprocess.Popen, int]:
    process = children.start(
        [*_pin(cpu), python, str(HERE / "fake_provider.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # The first line is "listening on 127.0.0.1:<port>"; readline is bounded by the alarm.
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(15)
    try:
        line = process.stdout.readline()
    finally:
        signal.alarm(0)
    match = re.search(r"listening on [\d.]+:(\d+)", line)
    if not match:
        raise BenchError(f"fake provider did not start: {line.strip() or 'no output'}")
    return process, int(match.group(1))


def _alarm(signum, frame):
    raise BenchError("timed out waiting for a child process")


def start_redis(children: Children, cpu: int | None, data_dir: Path, unix: bool) -> tuple[subprocess.Popen, str]:
    """A private redis-server for --limited-key, pinned with the load (not the system's Redis,
    whose CPU placement the bench does not control)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("--limited-key needs redis-server on PATH, or pass --redis-url")
    port = _free_port()
    socket_path = data_dir / "redis.sock"
    process = children.start(
        [*_pin(cpu), binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(data_dir), *(["--unixsocket", str(socket_path)] if unix else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import socket

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG") and (not unix or socket_path.exists()):
                return process, f"unix://{socket_path}" if unix else f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    raise BenchError("redis-server did not start")


def gateway_command(args) -> list[str]:
    if args.gateway_cmd:
        return args.gateway_cmd.split()
    local = REPO / ".venv" / "bin" / "eldric-cloudd"
    if local.exists():
        return [str(local)]
    found = shutil.which("eldric-cloudd")
    if not found:
        raise BenchError("eldric-cloudd not found: run `make run` once (or pip install -e .), or pass --gateway-cmd")
    return [found]


def gateway_env() -> dict[str, str]:
    """The environment of a benched gateway: a private SQLite database, no Redis, no auth, so
    only the hot path is measured."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "ELDRIC_MASTER_KEY", "ELDRIC_DATA_DIR"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    # The gateway runs from its data dir: the repository stays importable even when the editable
    # install predates an app (its package list is fixed at install time).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def gateway_argv(args, *, cpu: int | None, port: int, data_dir: Path, fake_port: int) -> list[str]:
    """``eldric-cloudd`` on ``port`` with one backend, the fake provider, and no Celery worker."""
    return [
        *_pin(cpu),
        *gateway_command(args),
        "--no-worker",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--backends",
        f"bench:http://127.0.0.1:{fake_port}/v1:sk-bench",
        "--server",
        args.server,
    ]


def start_gateway(
    children: Children, args, *, fake_port: int, data_dir: Path, cpu: int | None, log, redis_url: str = ""
):
    port = _free_port()
    env = gateway_env()
    if args.transport:
        env["ELDRIC_HTTP_TRANSPORT"] = args.transport
    if args.limited_key:
        # Only the limiter uses Redis (not Celery or the cache), under a prefix of this run's own.
        env["ELDRIC_LIMITS_REDIS_URL"] = redis_url
        env["ELDRIC_LIMITS_REDIS_PREFIX"] = f"eldbench:{os.getpid()}:{port}:"
    command = gateway_argv(args, cpu=cpu, port=port, data_dir=data_dir, fake_port=fake_port)
    process = children.start(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(data_dir))
    return process, port


def _get(url: str, timeout: float = 2.0) -> tuple[int, dict, bytes]:
    with LOCAL_OPENER.open(url, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def _post(url: str, body: dict, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with LOCAL_OPENER.open(request, timeout=timeout) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def wait_for_gateway(process: subprocess.Popen, port: int, log_path: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"eldric-cloudd exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            status, _, body = _get(f"http://127.0.0.1:{port}/health")
            health = json.loads(body)
            if status == 200 and health.get("models_available", 0) > 0:
                return health
            last = body.decode(errors="replace")
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"eldric-cloudd not ready after {timeout:.0f} s ({last}):\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def sanity_check(port: int) -> None:
    """One JSON and one streamed answer through the gateway, so wrk measures real successes."""
    base = f"http://127.0.0.1:{port}/v1/chat/completions"
    status, headers, body = _post(base, CHAT_BODY)
    if (
        status != 200
        or headers.get("x-eldric-backend") != "bench"
        or json.loads(body).get("object") != "chat.completion"
    ):
        raise BenchError(f"unexpected answer through the gateway: {status} {headers} {body[:200]!r}")
    status, headers, body = _post(base, {**CHAT_BODY, "stream": True})
    if status != 200 or not body.rstrip().endswith(b"data: [DONE]") or body.count(b"data: ") != 21:
        raise BenchError(f"unexpected stream through the gateway: {status} {body[-200:]!r}")


def create_limited_key(args, data_dir: Path, port: int, timeout: float = 30.0) -> str:
    """A client key with every rate limit on (and never reached), made with ``manage.py
    key_create`` against the gateway's database; returns once the gateway accepts it."""
    python = REPO / ".venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(ELDRIC_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="eldric_cloud.settings")
    budget = ["--budget-usd", "1000000000", "--budget-period", "month"] if args.key_budget else []
    done = subprocess.run(
        [str(python if python.exists() else sys.executable), "manage.py", "key_create", "--name", "bench",
         *KEY_LIMITS, *budget, "--json"],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"key_create failed: {done.stderr[-2000:]}")
    key = json.loads(done.stdout.strip().splitlines()[-1])["key"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(CHAT_BODY).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
            method="POST",
        )
        with contextlib.suppress(OSError), LOCAL_OPENER.open(request, timeout=5) as response:
            if response.status == 200 and response.headers.get("x-ratelimit-limit-requests"):
                return key
        time.sleep(0.2)
    raise BenchError("the gateway did not accept the bench key (is Redis reachable at --redis-url?)")


# --- /proc -----------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    found = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    pending.append(int(child))
    return found


def serving_pid(process: subprocess.Popen) -> int:
    """The gateway's own pid. With taskset in front, taskset execs, so the pid is the same.

    eldric-cloudd runs Daphne (``CommandLineInterface().run``) or ``uvicorn.run`` in its
    own process; the embedded Celery worker is a child, but --no-worker turns it off.
    """
    return process.pid


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")": state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- wrk -------------------------------------------------------------------------------


@dataclass
class Measurement:
    target: str  # "direct" or "gateway"
    mode: str  # "json" or "sse"
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    non_2xx: int = 0
    cpu_ms_per_request: float | None = None
    added_p50_ms: float | None = None
    notes: list[str] = field(default_factory=list)


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"cannot read wrk duration {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(output: str, into: Measurement) -> Measurement:
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (match and rps and p50 and p99):
        raise BenchError(f"cannot parse wrk output:\n{output}")
    into.requests = int(match.group(1))
    into.seconds = _to_ms(match.group(2) + match.group(3)) / 1000
    into.rps = float(rps.group(1))
    into.p50_ms = _to_ms(p50.group(1))
    into.p99_ms = _to_ms(p99.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        into.errors = sum(int(n) for n in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        into.non_2xx = int(non_2xx.group(1))
    return into


def write_scripts(directory: Path, key: str = "sk-client", suffix: str = "") -> dict[str, Path]:
    scripts = {}
    for mode, body in (("json", CHAT_BODY), ("sse", {**CHAT_BODY, "stream": True})):
        path = directory / f"chat_{mode}{suffix}.lua"
        encoded = json.dumps(body)  # contains '"stream": true' for the SSE script
        path.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = [==[{encoded}]==]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        )
        scripts[mode] = path
    return scripts


def run_wrk(url: str, script: Path, concurrency: int, duration: float, cpu: int | None) -> str:
    threads = min(concurrency, 2)
    command = [
        *_pin(cpu),
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from None
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def measure_key(args, url: str, script: Path, pid: int, *, direct: Measurement, through: Measurement) -> Measurement:
    """The same load with the limited key, right after the no-auth measurement."""
    load_cpu = 1 if args.pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2 else None
    before = cpu_seconds(pid)
    keyed = parse_wrk(
        run_wrk(url, script, through.concurrency, args.duration, load_cpu),
        Measurement("gateway+key", through.mode, through.concurrency),
    )
    if keyed.requests:
        keyed.cpu_ms_per_request = (cpu_seconds(pid) - before) * 1000 / keyed.requests
    keyed.added_p50_ms = keyed.p50_ms - direct.p50_ms
    keyed.notes.append(f"key adds p50 {keyed.p50_ms - through.p50_ms:.3f} ms over no auth")
    return keyed


# --- one run ---------------------------------------------------------------------------


def one_run(args, children: Children, run_index: int) -> dict:
    pin = args.pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gateway_cpu, load_cpu = (0, 1) if pin else (None, None)
    with tempfile.TemporaryDirectory(prefix="eldric-bench-") as tmp:
        tmp_path = Path(tmp)
        scripts = write_scripts(tmp_path)
        fake, fake_port = start_fake_provider(children, args.python, load_cpu)
        log_path = tmp_path / "gateway.log"
        (tmp_path / "data").mkdir()
        redis_url, redis = args.redis_url, None
        if args.limited_key and not redis_url:
            redis, redis_url = start_redis(children, load_cpu, tmp_path, args.redis_unix)
        with log_path.open("w") as log:
            gateway, port = start_gateway(
                children,
                args,
                fake_port=fake_port,
                data_dir=tmp_path / "data",
                cpu=gateway_cpu,
                log=log,
                redis_url=redis_url,
            )
        try:
            wait_for_gateway(gateway, port, log_path, args.startup_timeout)
            sanity_check(port)
            key_scripts = {}
            if args.limited_key:
                key_scripts = write_scripts(tmp_path, create_limited_key(args, tmp_path / "data", port), "_key")
            pid = serving_pid(gateway)
            extra = descendants(pid)
            ready_memory = memory_kib(pid)
            urls = {
                "direct": f"http://127.0.0.1:{fake_port}/v1/chat/completions",
                "gateway": f"http://127.0.0.1:{port}/v1/chat/completions",
            }
            # Warm-up: connection pools, imports done on first use, CPU frequency.
            for mode in args.modes:
                run_wrk(urls["gateway"], scripts[mode], 8, args.warmup, load_cpu)
                if key_scripts:
                    run_wrk(urls["gateway"], key_scripts[mode], 8, args.warmup, load_cpu)
            results: list[Measurement] = []
            for mode in args.modes:
                for concurrency in args.concurrency:
                    direct = parse_wrk(
                        run_wrk(urls["direct"], scripts[mode], concurrency, args.duration, load_cpu),
                        Measurement("direct", mode, concurrency),
                    )
                    before = cpu_seconds(pid)
                    through = parse_wrk(
                        run_wrk(urls["gateway"], scripts[mode], concurrency, args.duration, load_cpu),
                        Measurement("gateway", mode, concurrency),
                    )
                    if through.requests:
                        through.cpu_ms_per_request = (cpu_seconds(pid) - before) * 1000 / through.requests
                    through.added_p50_ms = through.p50_ms - direct.p50_ms
                    results += [direct, through]
                    if key_scripts:
                        script = key_scripts[mode]
                        results.append(measure_key(args, urls["gateway"], script, pid, direct=direct, through=through))
                    if gateway.poll() is not None:
                        raise BenchError(f"eldric-cloudd died during the run:\n{_tail(log_path)}")
            memory = memory_kib(pid)
        finally:
            children.stop(gateway)
            children.stop(fake)
            if redis is not None:
                children.stop(redis)
    return {
        "run": run_index,
        "server": args.server,
        "transport": args.transport or "default",
        "limited_key": bool(args.limited_key),
        "key_budget": bool(args.limited_key and args.key_budget),
        "redis": redis_url if args.limited_key else "",
        "pinned": pin,
        "gateway_pid_children": extra,
        "peak_rss_mb": round(memory.get("VmHWM", 0) / 1024, 1),
        "end_rss_mb": round(memory.get("VmRSS", 0) / 1024, 1),
        "ready_rss_mb": round(ready_memory.get("VmRSS", 0) / 1024, 1),
        "measurements": [asdict(m) for m in results],
    }


# --- report ----------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_run(run: dict) -> None:
    print(
        f"\nrun {run['run']}: server={run['server']} transport={run['transport']} "
        f"pinned={'gateway CPU 0, load CPU 1' if run['pinned'] else 'no'}"
    )
    header = ("target", "mode", "conc", "req/s", "p50 ms", "p99 ms", "added p50 ms", "gw CPU ms/req", "errors")
    rows = [header]
    for m in run["measurements"]:
        rows.append(
            (
                m["target"],
                m["mode"],
                str(m["concurrency"]),
                f"{m['rps']:.0f}",
                _fmt(m["p50_ms"]),
                _fmt(m["p99_ms"]),
                _fmt(m["added_p50_ms"]),
                _fmt(m["cpu_ms_per_request"]),
                str(m["errors"] + m["non_2xx"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("  ".join(cell.rjust(widths[i]) if i > 1 else cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"gateway peak RSS (VmHWM): {run['peak_rss_mb']} MB; RSS when ready: {run['ready_rss_mb']} MB, "
        f"at the end: {run['end_rss_mb']} MB"
    )
    if run["gateway_pid_children"]:
        print(f"note: the gateway process has children {run['gateway_pid_children']}; RSS is the main process only")
    for m in run["measurements"]:
        if m["errors"] or m["non_2xx"]:
            print(
                f"warning: {m['target']} {m['mode']} c={m['concurrency']}: {m['errors']} socket errors, "
                f"{m['non_2xx']} non-2xx answers"
            )
    _print_targets([run])


def _pick(runs: list[dict], target: str, mode: str, concurrency: int, key: str) -> list[float]:
    return [
        m[key]
        for run in runs
        for m in run["measurements"]
        if m["target"] == target and m["mode"] == mode and m["concurrency"] == concurrency and m[key] is not None
    ]


def _span(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if f"{low:.{digits}f}" == f"{high:.{digits}f}" else f"{low:.{digits}f}–{high:.{digits}f}"


def _print_targets(runs: list[dict]) -> None:
    added = _pick(runs, "gateway", "json", 1, "added_p50_ms")
    rps = _pick(runs, "gateway", "json", 8, "rps")
    if added:
        verdict = "met" if max(added) <= TARGET_ADDED_P50_MS else "missed"
        print(f"target added p50 at c=1 <= {TARGET_ADDED_P50_MS} ms: {_span(added, 2)} ms ({verdict})")
    if rps:
        verdict = "met" if min(rps) >= TARGET_JSON_RPS_C8 else "missed"
        print(f"target JSON req/s at c=8 >= {TARGET_JSON_RPS_C8}: {_span(rps, 0)} ({verdict})")
    key_p50 = _pick(runs, "gateway+key", "json", 1, "p50_ms")
    open_p50 = _pick(runs, "gateway", "json", 1, "p50_ms")
    if key_p50 and len(key_p50) == len(open_p50):
        added = [k - o for k, o in zip(key_p50, open_p50, strict=True)]
        verdict = "met" if max(added) <= TARGET_KEY_ADDED_P50_MS else "missed"
        print(f"target limited key adds p50 at c=1 <= {TARGET_KEY_ADDED_P50_MS} ms: {_span(added, 3)} ms ({verdict})")
    key_rps = _pick(runs, "gateway+key", "json", 8, "rps")
    if key_rps and len(key_rps) == len(rps):
        shares = [k / o for k, o in zip(key_rps, rps, strict=True) if o]
        verdict = "met" if shares and min(shares) >= TARGET_KEY_RPS_SHARE_C8 else "missed"
        print(
            f"target limited key keeps >= {TARGET_KEY_RPS_SHARE_C8:.0%} of no-auth JSON req/s at c=8: "
            f"{_span([100 * x for x in shares], 1)} % ({verdict})"
        )


def print_ranges(runs: list[dict], args) -> None:
    print(f"\nranges over {len(runs)} runs: server={args.server} transport={args.transport or 'default'}")
    print("| target | mode | conc | req/s | p50 ms | p99 ms | added p50 ms | gw CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|")
    for target in ("direct", "gateway", "gateway+key") if args.limited_key else ("direct", "gateway"):
        for mode in args.modes:
            for c in args.concurrency:
                cells = [
                    _span(_pick(runs, target, mode, c, "rps"), 0),
                    _span(_pick(runs, target, mode, c, "p50_ms"), 2),
                    _span(_pick(runs, target, mode, c, "p99_ms"), 2),
                    _span(_pick(runs, target, mode, c, "added_p50_ms"), 2),
                    _span(_pick(runs, target, mode, c, "cpu_ms_per_request"), 2),
                ]
                print(f"| {target} | {mode} | {c} | " + " | ".join(cells) + " |")
    print(
        f"gateway peak RSS: {_span([r['peak_rss_mb'] for r in runs], 0)} MB "
        f"(when ready: {_span([r.get('ready_rss_mb', 0) for r in runs], 0)} MB)"
    )
    _print_targets(runs)


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark eldric-cloudd with wrk against a fake OpenAI provider.")
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne", help="default daphne")
    parser.add_argument(
        "--transport",
        choices=("aiohttp", "httpx"),
        help="sets ELDRIC_HTTP_TRANSPORT for the gateway (default: the gateway's own default)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per mode (default 2)")
    parser.add_argument("--concurrency", default="1,8,64", help="comma-separated connection counts (default 1,8,64)")
    parser.add_argument("--modes", default="json,sse", help="json, sse or both (default json,sse)")
    parser.add_argument("--runs", type=int, default=1, help="repeat with a fresh gateway each time (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes with taskset")
    parser.add_argument("--gateway-cmd", help="command that runs eldric-cloudd (default .venv/bin/eldric-cloudd)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the fake provider")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for /health")
    parser.add_argument(
        "--limited-key",
        action="store_true",
        help="also measure with a client key whose RPM/TPM/concurrency limits are on, counted in Redis",
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="Redis for --limited-key (default: a private redis-server, pinned with the load)",
    )
    parser.add_argument("--key-budget", action="store_true", help="with --limited-key: give the key a budget too")
    parser.add_argument(
        "--redis-unix", action="store_true", help="with --limited-key: reach the private Redis over a Unix socket"
    )
    args = parser.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency: expected comma-separated integers, e.g. 1,8,64")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency: each value must be at least 1")
    if not args.modes or set(args.modes) - {"json", "sse"}:
        parser.error("--modes: json, sse or json,sse")
    if args.duration < 1 or args.runs < 1:
        parser.error("--duration must be at least 1 s and --runs at least 1")
    return args


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed. On Debian/Ubuntu: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    children = Children()
    runs = []
    try:
        for index in range(1, args.runs + 1):
            run = one_run(args, children, index)
            runs.append(run)
            print_run(run)
            sys.stdout.flush()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        children.stop_all()
        if args.json and runs:
            meta = {
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "nproc": os.cpu_count(),
                "cpu": _cpu_model(),
                "duration": args.duration,
                "runs": runs,
            }
            Path(args.json).write_text(json.dumps(meta, indent=2) + "\n")
    if len(runs) > 1:
        print_ranges(runs, args)
    return 0


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
