"""One writer of the concurrent-writers test, run as its own process (like an instance):
``python -m tests.usage.usage_writer DIR WRITER ROUNDS`` with DATABASE_URL set.

It says it is ready (DIR/ready-WRITER), waits for DIR/go, then runs a real UsageRecorder:
ROUNDS batches of requests that all land on the same day rows as every other writer's.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

DAY = 1_800_000_000.0  # a fixed moment: every writer hits the same day rows


def main(folder: str, writer: str, rounds: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")
    import django

    django.setup()
    from gateway.context import Usage
    from tests.usage.conftest import finished
    from usage.recorder import UsageRecorder

    folder_path = Path(folder)
    recorder = UsageRecorder(instance=f"writer-{writer}", flush_seconds=3600)
    (folder_path / f"ready-{writer}").touch()
    deadline = time.monotonic() + 60
    while not (folder_path / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal within 60 s")
        time.sleep(0.01)
    for round_ in range(rounds):
        for model in ("gpt-a", "gpt-b"):
            recorder.request_finished(
                finished(model=model, usage=Usage(7, 3, cached_tokens=2), cost=0.000123, at=DAY + round_)
            )
        recorder.request_finished(finished(model="odd", usage=Usage(1, 1), cost=None, at=DAY))
        recorder.request_finished(finished(model="gpt-a", status=502, backend="", at=DAY))
        if not recorder.flush():
            sys.exit("a flush failed")
    recorder.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
