"""The embedded Celery worker's own process, which ``eldric-cloudd`` starts beside itself
(``worker_supervisor.EmbeddedWorker``): one process, with beat on one of its threads."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from eldric_cloud.process_memory import skip_unused_imports


def worker_main(argv: list[str] | None = None) -> int:
    """The embedded Celery worker's process, which ``eldric-cloudd`` starts (see
    ``worker_supervisor.EmbeddedWorker``): the thread pool, and beat on a thread of its own."""
    parser = argparse.ArgumentParser(prog="eldric-cloudd embedded worker")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--schedule", required=True, help="beat's schedule file")
    parser.add_argument("--hostname", required=True, help="the worker's node name; %%h is the host name")
    parser.add_argument("--parent-pid", type=int, help="eldric-cloudd's pid: this process ends when it does")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    # The worker's settings leave out the apps only serving needs (eldric_cloud/settings_worker.py).
    os.environ["DJANGO_SETTINGS_MODULE"] = "eldric_cloud.settings_worker"
    # Django's system checks import every URLconf and view (the admin, the API, the dashboard),
    # about 9 MB the worker would keep for nothing; they check the code, so the tests run them
    # (tests/server/test_embedded_worker.py).
    os.environ.setdefault("CELERY_SKIP_CHECKS", "1")
    skip_unused_imports()
    from celery.utils.nodenames import default_nodename, host_format

    from eldric_cloud.celery import app

    worker = app.Worker(
        hostname=host_format(default_nodename(args.hostname)),
        pool_cls="threads",
        concurrency=args.concurrency,
        loglevel="WARNING",
        quiet=True,  # no start-up banner in eldric-cloudd's log
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        beat_thread=True,  # eldric_cloud.celery.ThreadedBeat
        schedule_filename=args.schedule,
    )
    worker.start()
    return worker.exitcode


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM when eldric-cloudd dies without stopping this process (Linux), and no start at
    all if it died before the ask was made."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent_pid:
        sys.exit(0)


if __name__ == "__main__":
    sys.exit(worker_main())
