"""License files (signed JSON, Ed25519), the tier table and each organisation's license state."""

from __future__ import annotations


def license_states_get() -> dict[str, object]:
    """organisation slug -> license state. (Filled in with licensing.)"""
    return {}
