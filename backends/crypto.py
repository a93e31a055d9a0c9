"""Encryption at rest for upstream API keys (Fernet, rotatable with MultiFernet)."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from eldric_cloud.datadir import data_dir_secret


class KeyDecryptionError(Exception):
    """The stored key was encrypted under a key this process does not have."""


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = settings.ELDRIC_ENCRYPTION_KEYS or [
        data_dir_secret(settings.ELDRIC_ENCRYPTION_KEY_FILE, factory=lambda: Fernet.generate_key().decode())
    ]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def reset_cache() -> None:
    _fernet.cache_clear()


def encrypt(raw: str) -> str:
    return _fernet().encrypt(raw.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyDecryptionError("stored API key cannot be decrypted with the configured keys") from None


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the first (newest) key."""
    return _fernet().rotate(token.encode()).decode() if token else ""


def mask(raw: str) -> str:
    """A display form that never reveals the key: ``sk-…1234``."""
    if not raw:
        return ""
    if len(raw) <= 8:
        return "…" + raw[-2:] if len(raw) > 4 else "…"
    prefix = raw.split("-", 1)[0] + "-" if "-" in raw[:8] else raw[:2]
    return f"{prefix}…{raw[-4:]}"
