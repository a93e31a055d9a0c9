"""What the shipped systemd unit (deploy/systemd/eldric-cloudd@.service) relies on:
``Type=notify`` needs READY=1 once eldric-cloudd serves and STOPPING=1 when it drains, sent
to ``NOTIFY_SOCKET`` as systemd sends it; and the unit itself must parse cleanly."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.cli_process import GatewayProcess
from tests.server.conftest import ROOT

UNIT = ROOT / "deploy" / "systemd" / "eldric-cloudd@.service"


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_eldric_cloudd_tells_systemd_it_is_ready_and_then_stopping(server, data_dir):
    directory = Path(tempfile.mkdtemp(prefix="eldric-notify-"))
    address = str(directory / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        gateway = GatewayProcess(server=server, data_dir=data_dir(), env={"NOTIFY_SOCKET": address})
        gateway.start()
        try:
            assert received(sock) == "READY=1"
            assert gateway.get("/health/ready").status_code == 200  # READY=1 meant it
        finally:
            assert gateway.stop() == 0
        assert received(sock) == "STOPPING=1"
    shutil.rmtree(directory, ignore_errors=True)


def test_the_shipped_unit_parses_without_a_warning(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    binary = Path(shutil.which("eldric-cloudd") or ROOT / ".venv" / "bin" / "eldric-cloudd")
    # As installed: the unit names /opt/eldric's eldric-cloudd, which this machine runs from the venv.
    text = UNIT.read_text().replace("/opt/eldric/.venv/bin/eldric-cloudd", str(binary))
    (tmp_path / UNIT.name).write_text(text)

    check = subprocess.run(
        [analyze, "verify", "./eldric-cloudd@eu-1.service"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    complaints = [line for line in (check.stdout + check.stderr).splitlines() if UNIT.name in line]
    assert check.returncode == 0 and complaints == [], complaints
