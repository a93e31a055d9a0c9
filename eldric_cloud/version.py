"""The installed eldric-cloudd's version, as the controller and the instance reports give it."""

from __future__ import annotations

from functools import cache


@cache
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eldric-cloudd")
    except PackageNotFoundError:
        return "unknown"
