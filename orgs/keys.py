"""Client keys: creation, revocation and the records the access snapshot holds."""

from __future__ import annotations

from orgs.access import KeyRecord


def key_records_get() -> dict[str, KeyRecord]:
    """SHA-256 hex -> record, for every usable key. (Filled in with client keys.)"""
    return {}
