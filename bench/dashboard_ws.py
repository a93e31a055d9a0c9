"""What an open dashboard costs the hot path: passthrough throughput with and without five
staff websocket clients on ``/dashboard/ws/``.

One eldric-cloudd (``--no-worker``, SQLite, a Professional license signed for this run with
a throw-away key), the bench's fast fake provider, and wrk (``apt-get install -y wrk``),
reusing ``bench/run.py``'s helpers. Rounds alternate "no dashboard" and "5 dashboards open",
so drift (CPU frequency, neighbours) hits both alike; the figure is the ratio of the medians.
The five clients log in through the admin's form, as a browser does, and read every frame.

Pinning as in bench/run.py: the gateway on CPU 0; wrk, the fake provider and the websocket
clients on CPU 1.

    .venv/bin/python bench/dashboard_ws.py                      # 3 rounds of 10 s each way
    .venv/bin/python bench/dashboard_ws.py --rounds 5 --duration 15 --json var/dashboard-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402 - bench/run.py, beside this file

CLIENTS = 5
TARGET_COST = 0.03  # the bar: under 3 % of passthrough throughput
USERNAME, PASSWORD = "bench-ops", "bench-ops-pw-123"


def professional_license(directory: Path) -> dict[str, str]:
    """A Professional license for the default organisation, signed with a key made for this run."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")
    import django

    django.setup()  # the signing code imports the license models; no database is opened
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from orgs.license_files import license_sign, public_key_b64

    private = Ed25519PrivateKey.generate()
    path = directory / "license.json"
    path.write_text(license_sign(private, organisation="default", tier="professional", days=2))
    return {"ELDRIC_LICENSE_PUBLIC_KEYS": public_key_b64(private), "ELDRIC_LICENSE_FILE": str(path)}


def create_staff(data_dir: Path, env: dict[str, str]) -> None:
    python = HERE.parent / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python if python.exists() else sys.executable), "manage.py", "createsuperuser", "--noinput",
         "--username", USERNAME, "--email", ""],
        cwd=str(HERE.parent), env={**env, "ELDRIC_DATA_DIR": str(data_dir), "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise bench.BenchError(f"createsuperuser failed: {done.stderr[-2000:]}")


def session_cookie(base: str) -> str:
    import httpx

    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        form = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        done = client.post(
            "/admin/login/?next=/dashboard/",
            data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/dashboard/"},
            headers={"Referer": base + "/admin/login/"},
        )
        if done.status_code != 302 or "sessionid" not in client.cookies:
            raise bench.BenchError(f"could not log in: {done.status_code}")
        return f"sessionid={client.cookies['sessionid']}"


class Dashboards:
    """``count`` websocket clients reading frames until stopped, each in its own thread."""

    def __init__(self, base: str, cookie: str, count: int) -> None:
        self.url = base.replace("http://", "ws://") + "/dashboard/ws/"
        self.headers = {"Cookie": cookie, "Origin": base}
        self.count = count
        self.frames = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready = threading.Barrier(count + 1)

    def _read(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, additional_headers=self.headers, open_timeout=10, max_size=None) as socket:
            socket.recv(timeout=10)  # the full state on connect
            self._ready.wait(timeout=30)
            while not self._stop.is_set():
                try:
                    text = socket.recv(timeout=0.5)
                except TimeoutError:
                    continue
                with self._lock:
                    self.frames += 1
                    self.bytes += len(text)

    def __enter__(self) -> Dashboards:
        for _ in range(self.count):
            thread = threading.Thread(target=self._read, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._ready.wait(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)


def start(args, children: bench.Children, tmp_path: Path, cpus: tuple) -> tuple[str, dict, int]:
    """The fake provider and a licensed gateway with a staff user; (base URL, wrk scripts,
    the gateway's pid)."""
    gateway_cpu, load_cpu = cpus
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    saved_env = dict(os.environ)
    os.environ.update(professional_license(tmp_path), ELDRIC_DASHBOARD_PUSH_SECONDS=str(args.push_seconds))
    try:
        scripts = bench.write_scripts(tmp_path)
        _, fake_port = bench.start_fake_provider(children, sys.executable, load_cpu)
        log_path = tmp_path / "gateway.log"
        with log_path.open("w") as log:
            gateway, port = bench.start_gateway(
                children, args, fake_port=fake_port, data_dir=data_dir, cpu=gateway_cpu, log=log
            )
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    bench.wait_for_gateway(gateway, port, log_path, 60)
    bench.sanity_check(port)
    create_staff(data_dir, {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")})
    return f"http://127.0.0.1:{port}", scripts, bench.serving_pid(gateway)


def idle_cost(base: str, pid: int, seconds: float = 10.0) -> dict:
    """The gateway's CPU time per second with no traffic, without and with the dashboards
    open: what building and sending the frames costs, free of the load's noise."""
    cookie = session_cookie(base)
    before = bench.cpu_seconds(pid)
    time.sleep(seconds)
    idle = (bench.cpu_seconds(pid) - before) * 1000 / seconds
    with Dashboards(base, cookie, CLIENTS) as dashboards:
        before = bench.cpu_seconds(pid)
        time.sleep(seconds)
        open_ = (bench.cpu_seconds(pid) - before) * 1000 / seconds
    return {
        "idle_cpu_ms_per_s": round(idle, 2),
        "dashboards_cpu_ms_per_s": round(open_, 2),
        "frames": dashboards.frames,
        "frame_bytes": dashboards.bytes // max(1, dashboards.frames),
    }


def measure(args, base: str, scripts: dict, load_cpu, pid: int) -> tuple[dict[str, list[float]], int]:
    """Alternating rounds; returns requests/s and the gateway's CPU ms per request, per label,
    and the frames the dashboards read. CPU per request is the steadier figure on a busy
    machine: neighbours slow the clock, not the work each request takes."""
    cookie = session_cookie(base)
    url = base + "/v1/chat/completions"
    bench.run_wrk(url, scripts["json"], args.concurrency, 3, load_cpu)  # warm-up
    figures: dict[str, list[float]] = {"without": [], "with": [], "cpu_without": [], "cpu_with": []}
    frames = 0
    for round_index in range(args.rounds):
        for label in ("without", "with") if round_index % 2 == 0 else ("with", "without"):
            measured = bench.Measurement("gateway", "json", args.concurrency)
            before = bench.cpu_seconds(pid)
            if label == "with":
                with Dashboards(base, cookie, CLIENTS) as dashboards:
                    output = bench.run_wrk(url, scripts["json"], args.concurrency, args.duration, load_cpu)
                frames += dashboards.frames
            else:
                output = bench.run_wrk(url, scripts["json"], args.concurrency, args.duration, load_cpu)
            cpu_ms = (bench.cpu_seconds(pid) - before) * 1000
            bench.parse_wrk(output, measured)
            if measured.errors or measured.non_2xx:
                raise bench.BenchError(f"errors under load: {output}")
            figures[label].append(measured.rps)
            figures[f"cpu_{label}"].append(round(cpu_ms / max(1, measured.requests), 4))
            print(
                f"round {round_index + 1} {label:>7} dashboards: {measured.rps:8.1f} req/s, "
                f"{figures[f'cpu_{label}'][-1]:.3f} CPU ms/request",
                flush=True,
            )
    return figures, frames


def summarise(args, figures: dict[str, list[float]], frames: int, pin: bool) -> dict:
    without, with_ = statistics.median(figures["without"]), statistics.median(figures["with"])
    # Each round's pair ran back to back: its ratio is the least disturbed by drift.
    paired = [1 - w / wo for w, wo in zip(figures["with"], figures["without"], strict=True) if wo]
    cpu_without, cpu_with = statistics.median(figures["cpu_without"]), statistics.median(figures["cpu_with"])
    return {
        "server": args.server,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "push_seconds": args.push_seconds,
        "clients": CLIENTS,
        "rps_without": figures["without"],
        "rps_with": figures["with"],
        "median_without": round(without, 1),
        "median_with": round(with_, 1),
        "cost_of_medians": round(1 - with_ / without, 4) if without else 0.0,
        "median_paired_cost": round(statistics.median(paired), 4) if paired else 0.0,
        "cpu_ms_per_request_without": figures["cpu_without"],
        "cpu_ms_per_request_with": figures["cpu_with"],
        "cpu_cost": round(cpu_with / cpu_without - 1, 4) if cpu_without else 0.0,
        "frames_received": frames,
        "pinned": pin,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server", default="daphne", choices=["daphne", "uvicorn"])
    parser.add_argument("--push-seconds", type=float, default=2.0, help="ELDRIC_DASHBOARD_PUSH_SECONDS")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    # What bench/run.py's start_gateway reads from its args.
    args.transport, args.gateway_cmd, args.limited_key = "", "", False
    pin = args.pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    cpus = (0, 1) if pin else (None, None)
    if pin:
        os.sched_setaffinity(0, {1})  # the websocket clients run in this process, with the load
    children = bench.Children()
    try:
        with tempfile.TemporaryDirectory(prefix="eldric-dash-bench-") as tmp:
            base, scripts, pid = start(args, children, Path(tmp), cpus)
            idle = idle_cost(base, pid)
            print(
                f"no traffic: the gateway uses {idle['idle_cpu_ms_per_s']} CPU ms/s, "
                f"{idle['dashboards_cpu_ms_per_s']} with {CLIENTS} dashboards open "
                f"({idle['frames']} frames of ~{idle['frame_bytes']} bytes)",
                flush=True,
            )
            figures, frames = measure(args, base, scripts, cpus[1], pid)
            children.stop_all()
    except bench.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    summary = {**summarise(args, figures, frames, pin), **idle}
    cost = summary["median_paired_cost"]
    verdict = "under" if cost < TARGET_COST else "OVER"
    print(
        f"median without {summary['median_without']} req/s, with {CLIENTS} dashboards {summary['median_with']} req/s; "
        f"median paired cost {cost * 100:.2f} % ({verdict} the {TARGET_COST * 100:.0f} % bar); "
        f"CPU per request {summary['cpu_cost'] * 100:+.2f} %; {frames} frames read"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
