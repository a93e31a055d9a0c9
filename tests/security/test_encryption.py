"""Keys at rest: Fernet tokens in the database, private key files, re-encryption command."""

from __future__ import annotations

import os
import stat
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from backends import crypto
from backends.models import Backend
from eldric_cloud.datadir import data_dir_secret

RAW = {"alpha": "sk-alpha-0123456789abcdef", "bravo": "sk-bravo-fedcba9876543210"}


@pytest.fixture
def use_keys(settings):
    """Switch this process's ELDRIC_ENCRYPTION_KEY, as a restart with a new value would."""

    def use(*keys: str) -> None:
        settings.ELDRIC_ENCRYPTION_KEYS = list(keys)
        crypto.reset_cache()

    yield use
    crypto.reset_cache()


def stored_tokens() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, api_key_encrypted FROM backends_backend ORDER BY name")
        return dict(cursor.fetchall())


def make_backends() -> None:
    for name, raw in RAW.items():
        backend = Backend(name=name, url=f"https://{name}.example/v1")
        backend.set_api_key(raw)
        backend.save()
    Backend.objects.create(name="keyless", url="http://localhost:11434", kind="ollama")


def run(*args: str) -> str:
    out = StringIO()
    call_command("reencrypt_keys", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_the_database_holds_fernet_tokens_and_never_the_raw_key(use_keys):
    use_keys(Fernet.generate_key().decode())
    make_backends()
    tokens = stored_tokens()
    for name, raw in RAW.items():
        assert raw not in tokens[name]
        assert tokens[name].startswith("gAAAAA")
        assert Backend.objects.get(name=name).api_key == raw
    assert tokens["keyless"] == ""
    hints = dict(Backend.objects.values_list("name", "api_key_hint"))
    assert hints["alpha"] == "sk-…cdef"


@pytest.mark.django_db
def test_reencrypt_moves_every_key_to_the_first_key_so_the_old_one_can_go(use_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(old)
    make_backends()
    before = stored_tokens()

    use_keys(new, old)  # step 1: new key first, old still readable
    output = run()
    assert "Re-encrypted 2 upstream keys" in output
    assert "0 already used it, 2 rotated from an older key" in output
    after = stored_tokens()
    assert after["keyless"] == ""
    for name in RAW:
        assert after[name] != before[name]
        Fernet(new.encode()).decrypt(after[name].encode())  # readable by the new key alone

    use_keys(new)  # step 3: the old key is dropped
    for name, raw in RAW.items():
        assert Backend.objects.get(name=name).api_key == raw
    use_keys(old)
    with pytest.raises(crypto.KeyDecryptionError):
        _ = Backend.objects.get(name="alpha").api_key

    use_keys(new, old)  # running it again is harmless
    assert "2 already used it, 0 rotated" in run()


@pytest.mark.django_db
def test_reencrypt_changes_nothing_when_a_key_cannot_be_read(use_keys):
    lost, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(lost)
    make_backends()
    use_keys(new)
    readable = Backend.objects.get(name="bravo")
    readable.set_api_key("sk-readable-11112222")
    readable.save()
    before = stored_tokens()

    with pytest.raises(CommandError) as failure:
        run()
    message = str(failure.value)
    assert "alpha" in message
    assert "bravo" not in message
    assert "nothing was changed" in message
    assert RAW["alpha"] not in message
    assert stored_tokens() == before  # one transaction: bravo was not rewritten either


@pytest.mark.django_db
def test_without_the_variable_it_says_how_to_rotate_the_data_dir_key(settings, tmp_path, use_keys):
    settings.ELDRIC_ENCRYPTION_KEY_FILE = tmp_path / "encryption.key"
    use_keys()
    make_backends()
    out, err = StringIO(), StringIO()
    call_command("reencrypt_keys", stdout=out, stderr=err)
    assert "ELDRIC_ENCRYPTION_KEY is not set" in err.getvalue()
    assert "under the data-dir key (2 already used it, 0 rotated" in out.getvalue()


def test_generate_prints_a_fresh_fernet_key_without_touching_the_database():
    # No django_db mark: a database query here would fail the test.
    first, second = run("--generate").strip(), run("--generate").strip()
    assert first != second
    Fernet(first.encode())  # a valid key


def test_data_dir_secrets_are_created_owner_only_even_with_a_lax_umask(tmp_path):
    previous = os.umask(0)
    try:
        value = data_dir_secret(tmp_path / "secret")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert data_dir_secret(tmp_path / "secret") == value  # generated once, then read


def test_the_generated_encryption_key_file_is_0600_and_used(settings, tmp_path):
    settings.ELDRIC_ENCRYPTION_KEYS = []
    settings.ELDRIC_ENCRYPTION_KEY_FILE = tmp_path / "encryption.key"
    crypto.reset_cache()
    try:
        token = crypto.encrypt("sk-secret-value-1234")
    finally:
        crypto.reset_cache()
    path = tmp_path / "encryption.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert Fernet(key.encode()).decrypt(token.encode()) == b"sk-secret-value-1234"
