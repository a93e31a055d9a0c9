"""Several instances write usage at once to one Postgres: the day roll-ups stay exactly the
sum of the records."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.cli_process import clean_environment

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 3
ROUNDS = 80


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, **kwargs)


def test_three_recorders_at_once_keep_the_rollups_exact_on_postgres(postgres_url, tmp_path):
    env = clean_environment(DATABASE_URL=postgres_url, ELDRIC_DATA_DIR=str(tmp_path))
    assert run(["manage.py", "migrate", "--noinput", "-v", "0"], env).wait(120) == 0
    writers = [
        run(["-m", "tests.usage.usage_writer", str(tmp_path), str(i), str(ROUNDS)], env, stderr=subprocess.PIPE)
        for i in range(WRITERS)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < WRITERS:
        assert time.monotonic() < deadline, "writers did not start"
        assert all(w.poll() is None for w in writers), [w.stderr.read() for w in writers if w.poll() is not None]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for writer in writers:
        _, stderr = writer.communicate(timeout=180)
        assert writer.returncode == 0, stderr.decode()[-3000:]

    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://", 1)) as db:
        records = db.execute(
            "SELECT model, count(*), sum(input_tokens), sum(output_tokens), sum(cached_tokens), "
            "coalesce(sum(cost_nanos), 0), sum(unpriced::int), sum((status >= 400)::int) "
            "FROM usage_usagerecord GROUP BY model ORDER BY model"
        ).fetchall()
        days = db.execute(
            "SELECT model, sum(requests), sum(input_tokens), sum(output_tokens), sum(cached_tokens), "
            "sum(cost_nanos), sum(unpriced_requests), sum(errors) FROM usage_usageday GROUP BY model ORDER BY model"
        ).fetchall()
        rows = db.execute("SELECT count(*) FROM usage_usageday").fetchone()[0]
    total = WRITERS * ROUNDS
    assert days == records
    assert dict((r[0], r[1]) for r in records) == {"gpt-a": 2 * total, "gpt-b": total, "odd": total}
    assert dict((r[0], r[5]) for r in records)["gpt-b"] == total * 123_000
    assert rows == 4  # one row per (day, model, backend): every writer added to the same rows
