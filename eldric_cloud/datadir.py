"""Secrets generated once into the data directory (mode 0600) when not given by env."""

import os
import secrets
from pathlib import Path


def data_dir_secret(path: Path, factory=lambda: secrets.token_urlsafe(48)) -> str:
    """Return the secret stored at ``path``, creating it with ``factory`` on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = factory()
    # O_EXCL: when two processes start together, exactly one writes and both read its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
