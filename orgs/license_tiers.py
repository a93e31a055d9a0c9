"""The tier table, exactly as the seed's "License Limits", and how a license's overrides apply.

The seed's rows for priority routing, the dashboard and runtime backend add/remove have fewer
cells than there are tiers. They are read as the *highest* tiers having the feature: three
"Yes" cells mean Standard, Professional and Enterprise; two mean Professional and Enterprise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orgs.models import Tier

# Limit names a license's ``overrides`` may raise; None means unlimited.
COUNT_LIMITS = ("cloud_workers", "backends")
FEATURES = ("auto_discovery", "priority_routing", "health_monitoring", "dashboard", "runtime_backends")
LIMIT_LABELS = {
    "cloud_workers": "cloud workers",
    "backends": "backends per worker",
    "auto_discovery": "auto-discovery",
    "priority_routing": "priority routing",
    "health_monitoring": "health monitoring",
    "dashboard": "the dashboard",
    "runtime_backends": "runtime backend add/remove",
}
TIER_ORDER = (Tier.FREE, Tier.STANDARD, Tier.PROFESSIONAL, Tier.ENTERPRISE)


@dataclass(frozen=True, slots=True)
class TierLimits:
    cloud_workers: int | None
    backends: int | None
    priority_routing: bool
    dashboard: bool
    runtime_backends: bool
    auto_discovery: bool = True
    health_monitoring: bool = True

    def allows(self, limit: str, count: int) -> bool:
        """Whether ``count`` items fit under the count limit ``limit``."""
        ceiling = getattr(self, limit)
        return ceiling is None or count <= ceiling


TIERS: dict[str, TierLimits] = {
    Tier.FREE: TierLimits(cloud_workers=1, backends=2, priority_routing=False, dashboard=False, runtime_backends=False),
    Tier.STANDARD: TierLimits(
        cloud_workers=2, backends=5, priority_routing=True, dashboard=False, runtime_backends=True
    ),
    Tier.PROFESSIONAL: TierLimits(
        cloud_workers=5, backends=15, priority_routing=True, dashboard=True, runtime_backends=True
    ),
    Tier.ENTERPRISE: TierLimits(
        cloud_workers=None, backends=None, priority_routing=True, dashboard=True, runtime_backends=True
    ),
}


def tier_label(tier: str) -> str:
    return Tier(tier).label if tier in Tier.values else tier


def overrides_check(overrides) -> str:
    """Why ``overrides`` is not a valid overrides object, or "" when it is."""
    if not isinstance(overrides, dict):
        return "overrides must be an object"
    for name, value in overrides.items():
        if name in COUNT_LIMITS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return f"overrides.{name} must be a non-negative integer or null (unlimited)"
        elif name in FEATURES:
            if not isinstance(value, bool):
                return f"overrides.{name} must be true or false"
        else:
            return f"overrides.{name}: unknown limit (known: {', '.join(COUNT_LIMITS + FEATURES)})"
    return ""


def tier_limits(tier: str, overrides: dict | None = None) -> TierLimits:
    """The tier's limits, raised by ``overrides``. An override only ever raises a limit (a
    higher count, null for unlimited, or true for a feature); one that would lower it is ignored."""
    limits = TIERS.get(tier, TIERS[Tier.FREE])
    changes = {}
    for name, value in (overrides or {}).items():
        current = getattr(limits, name, None)
        if name in COUNT_LIMITS:
            if current is not None and (value is None or value > current):
                changes[name] = value
        elif name in FEATURES and value is True:
            changes[name] = True
    return replace(limits, **changes) if changes else limits
