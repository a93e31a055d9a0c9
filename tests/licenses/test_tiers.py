"""The tier table as the seed's "License Limits", read with short rows meaning the highest tiers."""

import pytest

from orgs.license_tiers import TIERS, tier_limits


def test_the_table_is_the_seeds():
    rows = {
        tier: (
            t.cloud_workers,
            t.backends,
            t.auto_discovery,
            t.priority_routing,
            t.health_monitoring,
            t.dashboard,
            t.runtime_backends,
        )
        for tier, t in TIERS.items()
    }

    assert rows == {
        "free": (1, 2, True, False, True, False, False),
        "standard": (2, 5, True, True, True, False, True),
        "professional": (5, 15, True, True, True, True, True),
        "enterprise": (None, None, True, True, True, True, True),
    }


def test_overrides_raise_limits():
    limits = tier_limits("free", {"backends": 10, "cloud_workers": None, "dashboard": True})

    assert (limits.backends, limits.cloud_workers, limits.dashboard) == (10, None, True)


@pytest.mark.parametrize("overrides", [{"backends": 1}, {"priority_routing": False}, {"cloud_workers": 0}])
def test_overrides_never_lower_a_limit(overrides):
    assert tier_limits("standard", overrides) == TIERS["standard"]


def test_an_unknown_tier_is_free():
    assert tier_limits("platinum") == TIERS["free"]
