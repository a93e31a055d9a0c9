"""The documented rotation procedure, end to end, against a real data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli_process import GatewayProcess
from tests.fakes import recordings
from tests.fakes.server import openai_models, reply_bytes

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-rotate-me-5f1e2d3c4b5a69788796"
USER = [{"role": "user", "content": "hi"}]


def manage(daemon: GatewayProcess, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "reencrypt_keys", *args],
        env={**daemon.env, "ELDRIC_DATA_DIR": str(daemon.data_dir), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rotate_from_the_generated_data_dir_key_to_a_new_one(tmp_path, fake_provider):
    fake = fake_provider("alpha")
    fake.on("GET", "/v1/models", openai_models("m-alpha"))
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    args = ("--backends", f"alpha:{fake.url}/v1:{KEY}")

    # First run: the key is encrypted under the generated data-dir key.
    first = GatewayProcess(*args, data_dir=tmp_path / "data").start()
    first.stop()
    old = (first.data_dir / "encryption.key").read_text().strip()

    generated = manage(first, "--generate", env={})
    assert generated.returncode == 0, generated.stderr
    new = generated.stdout.strip()
    assert new != old

    rotated = manage(first, env={"ELDRIC_ENCRYPTION_KEY": f"{new},{old}"})
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted 1 upstream key" in rotated.stdout
    assert "1 rotated from an older key" in rotated.stdout
    assert KEY not in rotated.stdout + rotated.stderr

    # Restart with the new key alone: the stored key still decrypts and is used upstream.
    second = GatewayProcess(*args, env={"ELDRIC_ENCRYPTION_KEY": new}, data_dir=first.data_dir, name="second").start()
    try:
        answer = httpx.post(second.url + "/v1/chat/completions", json={"model": "m-alpha", "messages": USER})
        assert answer.status_code == 200
        assert fake.requests_to("/v1/chat/completions")[-1].headers["Authorization"] == f"Bearer {KEY}"
        assert "cannot be decrypted" not in second.logs()
    finally:
        second.stop()

    # With the old key alone the stored key no longer decrypts: the old key is really retired.
    stale = manage(first, env={"ELDRIC_ENCRYPTION_KEY": old})
    assert stale.returncode != 0
    assert "alpha" in stale.stderr
