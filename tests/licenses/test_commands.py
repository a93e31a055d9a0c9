"""The license server's two management commands."""

import json
import os
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orgs.license_files import license_verify, public_keys_parse


def keygen(path) -> str:
    out = StringIO()
    call_command("license_keygen", "--private-key", str(path), stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_keygen_writes_a_0600_private_key_and_prints_the_public_key(tmp_path):
    path = tmp_path / "signing.pem"
    old_umask = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        public = keygen(path)
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(public_keys_parse([public])) == 1
    assert public not in path.read_text()


def test_keygen_refuses_to_overwrite_a_key(tmp_path):
    path = tmp_path / "signing.pem"
    keygen(path)
    before = path.read_bytes()

    with pytest.raises(CommandError, match="already exists"):
        keygen(path)
    assert path.read_bytes() == before


def test_issue_writes_a_license_the_public_key_verifies(tmp_path):
    key, out = tmp_path / "signing.pem", tmp_path / "acme.json"
    public = keygen(key)

    call_command(
        "license_issue",
        "--private-key",
        str(key),
        "--org",
        "acme",
        "--tier",
        "professional",
        "--days",
        "365",
        "--out",
        str(out),
        "--overrides",
        '{"backends": 30}',
        stdout=StringIO(),
    )

    payload = license_verify(out.read_text(), public_keys_parse([public]))
    assert (payload.organisation, payload.tier, payload.overrides) == ("acme", "professional", {"backends": 30})
    assert (payload.expires_at - payload.issued_at).days == 365
    assert "PRIVATE" not in out.read_text()
    assert set(json.loads(out.read_text())) == {"payload", "signature"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "days must be at least 1"),
        (["--days", "5", "--overrides", '{"seats": 3}'], "unknown limit"),
        (["--days", "5", "--org", "not a slug"], "organisation must be a slug"),
    ],
)
def test_issue_says_what_is_wrong(tmp_path, args, message):
    key = tmp_path / "signing.pem"
    keygen(key)
    base = {"--org": "default", "--tier": "standard"}
    argv = ["--private-key", str(key), "--out", str(tmp_path / "x.json")]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for flag, value in {**base, **given}.items():
        argv += [flag, value]

    with pytest.raises(CommandError, match=message):
        call_command("license_issue", *argv, stdout=StringIO())
