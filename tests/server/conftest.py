"""A migrated data directory, made once, copied for each eldric-cloudd these tests start."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.cli_process import clean_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    template = tmp_path_factory.mktemp("eldric-template")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"],
        env=clean_environment(ELDRIC_DATA_DIR=str(template)),
        check=True,
        timeout=120,
    )
    return template


@pytest.fixture(scope="session")
def data_dir(migrated_template):
    """A fresh data directory whose database is already migrated (start-up skips a second or so)."""

    def make() -> Path:
        target = Path(tempfile.mkdtemp(prefix="eldric-test-"))
        shutil.copytree(migrated_template, target, dirs_exist_ok=True)
        return target

    return make
