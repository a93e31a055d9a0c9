"""Keeping eldric-cloudd's processes small (issue 14's memory goals, measured with
``bench/memory.py``): optional modules nothing here uses are kept out, and glibc's malloc
arenas are limited. Both run before Django loads the apps, in the gateway and in its
embedded worker."""

from __future__ import annotations

import contextlib
import os
import sys

# Modules that libraries import only when they happen to be installed, and that eldric-cloudd
# never uses. Each library handles the ImportError a blocked module gives; blocked before Django
# loads the apps, they stay out of the gateway's and the worker's memory (bench/memory.py).
UNUSED_OPTIONAL_MODULES = (
    "trio",  # httpcore's trio backend; the dev requirements install trio (for selenium)
    "httpx._main",  # httpx's command-line client, with rich, click and pygments
    "pygments",  # highlighting in DRF's browsable API; the management API renders JSON only
    "requests",  # DRF's test client
    "OpenSSL",  # TLS in Twisted; Daphne listens in plain HTTP, TLS ends in front of it
)

# glibc's mallopt parameter for the most malloc arenas (malloc.h).
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads that allocate at the same time arenas of their own, up to eight per
    core, and memory freed in one arena is not reused by another. Under the GIL threads seldom
    allocate at the same moment, so two arenas cost no waiting and hold about 5 MB less in the
    gateway under load (bench/memory.py). ``MALLOC_ARENA_MAX``, when set, wins. Call it before
    any thread starts: glibc fixes the limit when a second arena is first needed."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)


def skip_unused_imports() -> None:
    """Block ``UNUSED_OPTIONAL_MODULES``, and psycopg unless the database is PostgreSQL (DRF
    imports ``django.contrib.postgres`` when it can). Reads the settings, so call it after
    ``DJANGO_SETTINGS_MODULE`` is set and before ``django.setup()``."""
    from django.conf import settings

    blocked = list(UNUSED_OPTIONAL_MODULES)
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        blocked.append("psycopg")
    for name in blocked:
        sys.modules.setdefault(name, None)  # None in sys.modules: `import name` raises ImportError
