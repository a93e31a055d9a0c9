"""Several instances add to the same roll-up rows at once on one Postgres: nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.cli_process import clean_environment

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 3
ROUNDS = 150


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, **kwargs)


def test_three_writers_at_once_add_up_exactly_on_postgres(postgres_url, tmp_path):
    env = clean_environment(DATABASE_URL=postgres_url, ELDRIC_DATA_DIR=str(tmp_path))
    migrate = run(["manage.py", "migrate", "--noinput", "-v", "0"], env)
    assert migrate.wait(120) == 0

    writers = [
        run(["-m", "tests.traffic.upsert_writer", str(tmp_path), str(i), str(ROUNDS)], env, stderr=subprocess.PIPE)
        for i in range(WRITERS)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < WRITERS:
        assert time.monotonic() < deadline, "writers did not start"
        assert all(w.poll() is None for w in writers), [w.stderr.read() for w in writers if w.poll() is not None]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()[-3000:]

    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://", 1)) as db:
        minutes = db.execute(
            "SELECT backend, EXTRACT(EPOCH FROM bucket)::bigint, requests, errors, prompt_tokens, completion_tokens, "
            "latency_sum, latency_b05 FROM traffic_trafficminute ORDER BY backend, bucket"
        ).fetchall()
        days = db.execute("SELECT backend, requests, prompt_tokens FROM traffic_trafficday ORDER BY backend").fetchall()
        events = db.execute("SELECT count FROM traffic_trafficeventminute").fetchall()
    total = WRITERS * ROUNDS
    first = 1_800_000_000 - 1_800_000_000 % 60
    expected_minutes = []
    for backend in ("alpha", "beta"):
        expected_minutes += [
            (backend, first, 2 * total, total, 7 * total, 3 * total, 0.5 * total, 2 * total),
            (backend, first + 60, total, 0, 0, 0, 0.0, 0),
        ]
    expected_minutes += [(f"own-{i}", first, ROUNDS, 0, 0, 0, 0.0, 0) for i in range(WRITERS)]
    assert sorted(minutes) == sorted(expected_minutes)
    assert sorted(days) == sorted(
        [("alpha", 3 * total, 7 * total), ("beta", 3 * total, 7 * total)]
        + [(f"own-{i}", ROUNDS, 0) for i in range(WRITERS)]
    )
    assert events == [(total,)]
