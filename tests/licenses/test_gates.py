"""Every license gate, for every tier (pure: a state and counts in, allowed or LicenseLimit out)."""

from datetime import UTC, datetime, timedelta

import pytest

from orgs.license_gates import (
    LicenseLimit,
    backend_add_check,
    backend_remove_check,
    dashboard_check,
    instances_check,
    static_backends_check,
)
from orgs.licenses import LicenseState

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TIERS = ["free", "standard", "professional", "enterprise"]
BACKENDS = {"free": 2, "standard": 5, "professional": 15, "enterprise": None}
WORKERS = {"free": 1, "standard": 2, "professional": 5, "enterprise": None}


def state(tier: str, **changes) -> LicenseState:
    if tier == "free":
        return LicenseState(organisation="default")
    fields = {
        "organisation": "default",
        "tier": tier,
        "license_id": "lic-test",
        "issued_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=30),
    }
    return LicenseState(**{**fields, **changes})


def allowed(check, *args, **kwargs) -> bool:
    try:
        check(*args, **kwargs)
    except LicenseLimit:
        return False
    return True


@pytest.mark.parametrize("tier", TIERS)
def test_static_backends_up_to_the_tiers_limit(tier):
    limit = BACKENDS[tier]
    if limit is None:
        assert allowed(static_backends_check, state(tier), count=1000, now=NOW)
        return
    assert allowed(static_backends_check, state(tier), count=limit, now=NOW)
    assert not allowed(static_backends_check, state(tier), count=limit + 1, now=NOW)


@pytest.mark.parametrize("tier", TIERS)
def test_runtime_add_and_remove(tier):
    runtime = tier != "free"
    assert allowed(backend_add_check, state(tier), existing=0, now=NOW) is runtime
    assert allowed(backend_remove_check, state(tier), now=NOW) is runtime
    limit = BACKENDS[tier]
    if runtime and limit is not None:
        assert allowed(backend_add_check, state(tier), existing=limit - 1, now=NOW)
        assert not allowed(backend_add_check, state(tier), existing=limit, now=NOW)


@pytest.mark.parametrize("tier", TIERS)
def test_instances(tier):
    limit = WORKERS[tier]
    if limit is None:
        assert allowed(instances_check, state(tier), live_others=500, now=NOW)
        return
    assert allowed(instances_check, state(tier), live_others=limit - 1, now=NOW)
    assert not allowed(instances_check, state(tier), live_others=limit, now=NOW)


@pytest.mark.parametrize("tier", TIERS)
def test_dashboard(tier):
    assert allowed(dashboard_check, state(tier), now=NOW) is (tier in ("professional", "enterprise"))


def test_the_message_names_the_tier_the_limit_and_how_to_install_a_license():
    with pytest.raises(LicenseLimit) as caught:
        backend_add_check(state("free"), existing=2, now=NOW)

    message = str(caught.value)
    assert "Free tier" in message
    assert "allows 2 backends per worker" in message
    assert "--license FILE" in message and "POST /api/v1/licenses" in message
    assert (caught.value.tier, caught.value.limit) == ("free", "backends")


def test_a_6th_instance_on_professional_is_refused_naming_the_limit():
    with pytest.raises(LicenseLimit, match=r"Professional tier .* allows 5 cloud workers"):
        instances_check(state("professional"), live_others=5, now=NOW)


def test_after_grace_free_limits_apply_to_changes():
    expired = state("enterprise", expires_at=NOW - timedelta(days=15))

    assert not allowed(backend_add_check, expired, existing=0, now=NOW)
    in_grace = state("enterprise", expires_at=NOW - timedelta(days=13))
    assert allowed(backend_add_check, in_grace, existing=50, now=NOW)


def test_overrides_in_the_license_raise_the_gate():
    assert allowed(static_backends_check, state("standard", overrides={"backends": 9}), count=9, now=NOW)
