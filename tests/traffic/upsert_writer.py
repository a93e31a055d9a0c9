"""One writer of the concurrent-upsert test, run as its own process (like an instance):
``python -m tests.traffic.upsert_writer DIR WRITER ROUNDS`` with DATABASE_URL set.

It says it is ready (DIR/ready-WRITER), waits for DIR/go, then writes ROUNDS batches that
all hit the same rows as every other writer, plus one row of its own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

MINUTE = 1_800_000_000 - 1_800_000_000 % 60  # a fixed minute: every writer hits the same rows


def main(folder: str, writer: str, rounds: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")
    import django

    django.setup()
    from traffic.aggregate import Batch, Counters
    from traffic.services import traffic_rollups_write

    folder_path = Path(folder)
    (folder_path / f"ready-{writer}").touch()
    deadline = time.monotonic() + 60
    while not (folder_path / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal within 60 s")
        time.sleep(0.01)
    for _ in range(rounds):
        batch = Batch()
        for backend in ("alpha", "beta"):
            shared = Counters(requests=2, errors=1, prompt_tokens=7, completion_tokens=3, latency_sum=0.5)
            shared.latency_hist[5] = 2
            batch.counters[(MINUTE, backend, "gpt-4o")] = shared
            batch.counters[(MINUTE + 60, backend, "gpt-4o")] = Counters(requests=1)
        batch.counters[(MINUTE, f"own-{writer}", "other")] = Counters(requests=1)
        batch.events[(MINUTE, "alpha", "gpt-4o", "error", 502, "upstream_unreachable")] = 1
        traffic_rollups_write(batch=batch)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
