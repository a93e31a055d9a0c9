"""License state over time (a frozen clock), /health's license and the daily warning."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from backends.heartbeat import LicenseWarner
from orgs.access import AccessSnapshot
from orgs.licenses import license_health, license_state_get, license_states_get
from orgs.models import License
from orgs.services import license_install

ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRES = ISSUED + timedelta(days=30)


@pytest.fixture
def standard(db, license_key):
    license_install(document=license_key.issue(tier="standard", days=30, now=ISSUED))
    return license_state_get()


@pytest.mark.parametrize(
    ("moment", "status", "tier"),
    [
        (EXPIRES - timedelta(seconds=1), "valid", "standard"),
        (EXPIRES, "grace", "standard"),
        (EXPIRES + timedelta(days=13, hours=23), "grace", "standard"),
        (EXPIRES + timedelta(days=14), "expired", "free"),
        (EXPIRES + timedelta(days=400), "expired", "free"),
    ],
)
def test_an_expired_license_keeps_its_tier_for_14_days_of_grace(standard, moment, status, tier):
    assert standard.status(moment) == status
    assert standard.effective_tier(moment) == tier
    assert standard.limits(moment).backends == (5 if tier == "standard" else 2)


def test_health_shows_the_tier_and_expiry(standard):
    access = AccessSnapshot(licenses=license_states_get())

    assert license_health(access, now=ISSUED) == {"tier": "standard", "expires_at": "2026-01-31T00:00:00Z"}


def test_health_warns_in_grace_and_names_its_end(standard):
    access = AccessSnapshot(licenses=license_states_get())

    report = license_health(access, now=EXPIRES + timedelta(days=1))

    assert report["tier"] == "standard"
    assert report["grace_until"] == "2026-02-14T00:00:00Z"
    assert "expired on 2026-01-31" in report["warning"]
    assert "2026-02-14" in report["warning"]


def test_health_after_grace_is_free_with_a_warning(standard):
    access = AccessSnapshot(licenses=license_states_get())

    report = license_health(access, now=EXPIRES + timedelta(days=15))

    assert report["tier"] == "free"
    assert "grace_until" not in report
    assert "Free limits apply" in report["warning"]


def test_no_license_is_free():
    assert license_health(AccessSnapshot()) == {"tier": "free", "expires_at": None}


@pytest.mark.django_db
@pytest.mark.license_tier("free")
def test_a_stored_license_that_no_longer_verifies_is_free(license_key, settings):
    license_install(document=license_key.issue(tier="enterprise"))
    # The row is edited behind the service's back (or the key was removed from the trusted list).
    License.objects.update(document=License.objects.get().document.replace('"enterprise"', '"standard"'))

    state = license_state_get()

    assert state.status() == "invalid"
    assert state.effective_tier() == "free"
    assert "does not verify" in state.error
    settings.ELDRIC_LICENSE_PUBLIC_KEYS = []
    assert license_state_get().effective_tier() == "free"


def test_the_grace_warning_is_logged_once_a_day(standard, caplog):
    warner = LicenseWarner()
    states = [standard]
    first = EXPIRES + timedelta(hours=1)

    with caplog.at_level(logging.WARNING, logger="eldric_cloud.license"):
        assert warner.check(states, first)
        assert not warner.check(states, first + timedelta(hours=23))
        assert warner.check(states, first + timedelta(days=1))
        # After grace the message changes, and is logged at once.
        assert warner.check(states, EXPIRES + timedelta(days=14, hours=1))

    assert len([r for r in caplog.records if "expired on 2026-01-31" in r.getMessage()]) == 3
    assert not warner.check(states, ISSUED)  # nothing to say while valid
