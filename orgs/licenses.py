"""License files (signed JSON, Ed25519), the tier table and each organisation's license state."""

from __future__ import annotations


def license_health(access) -> dict:
    """The installation's license for ``/health``: ``{"tier", "expires_at"}``. (Filled in.)"""
    return {"tier": "free", "expires_at": None}


def license_states_get() -> dict[str, object]:
    """organisation slug -> license state. (Filled in with licensing.)"""
    return {}
