"""Settings of the embedded Celery worker (eldric_cloud/embedded_worker.py): the gateway's
settings, less what only serving needs."""

from eldric_cloud.settings import *  # noqa: F403

# Daphne's app only puts Daphne behind ``runserver``; importing it loads Twisted and autobahn,
# which the worker never runs (about 16 MB of RSS, bench/memory.py).
INSTALLED_APPS = [name for name in INSTALLED_APPS if name != "daphne"]  # noqa: F405
