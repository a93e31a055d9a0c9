"""A license signing key for the test session, and licenses signed with it.

Generated once per test process; ``tests/conftest.py`` trusts its public key and installs an
Enterprise license for the default organisation, so tests that add backends at runtime keep
testing what they test. Child processes (``tests/cli_process.py``) get the key and a license
file through ELDRIC_LICENSE_PUBLIC_KEYS and ELDRIC_LICENSE_FILE.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orgs.license_files import license_sign, public_key_b64


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: str
    directory: Path

    def issue(
        self,
        *,
        organisation: str = "default",
        tier: str = "enterprise",
        days: int = 365,
        overrides: dict | None = None,
        now: datetime | None = None,
    ) -> str:
        return license_sign(self.private, organisation=organisation, tier=tier, days=days, overrides=overrides, now=now)

    def issue_file(self, name: str = "license.json", **kwargs) -> Path:
        path = self.directory / name
        path.write_text(self.issue(**kwargs))
        return path

    @functools.cached_property
    def enterprise_file(self) -> Path:
        """The default organisation's Enterprise license, for child processes."""
        return self.issue_file("enterprise-default.json", days=3650)


@functools.cache
def session_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    directory = Path(tempfile.mkdtemp(prefix="eldric-lic-"))
    return SigningKey(private=private, public=public_key_b64(private), directory=directory)


def tampered(document: str, **changes) -> str:
    """The same signature over a changed payload."""
    data = json.loads(document)
    data["payload"].update(changes)
    return json.dumps(data)
