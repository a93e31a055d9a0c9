"""License gates. They run where things change (start-up, the API, the admin), never on a
request in flight: a limit reached stops the change, not the traffic already flowing."""

from __future__ import annotations

from datetime import datetime

from orgs.license_tiers import LIMIT_LABELS, tier_label
from orgs.licenses import LicenseState

INSTALL_HINT = (
    "install a license with `eldric-cloudd --license FILE`, ELDRIC_LICENSE_FILE, the admin "
    "(Licenses) or POST /api/v1/licenses"
)


class LicenseLimit(Exception):
    """A change the organisation's license does not allow. Answered as 403 ``license_limit``."""

    code = "license_limit"

    def __init__(self, message: str, *, tier: str, limit: str) -> None:
        super().__init__(message)
        self.message = message
        self.tier = tier
        self.limit = limit


def _subject(state: LicenseState, now: datetime | None) -> tuple[str, str]:
    tier = state.effective_tier(now)
    return tier, f"the {tier_label(tier)} tier of organisation '{state.organisation}'"


def _count_limit(state: LicenseState, limit: str, count: int, what: str, now: datetime | None) -> None:
    limits = state.limits(now)
    if limits.allows(limit, count):
        return
    tier, subject = _subject(state, now)
    ceiling = getattr(limits, limit)
    raise LicenseLimit(
        f"{what[0].upper()}{what[1:]}: {subject} allows {ceiling} {LIMIT_LABELS[limit]}; to go beyond, {INSTALL_HINT}.",
        tier=tier,
        limit=limit,
    )


def _feature(state: LicenseState, feature: str, what: str, now: datetime | None) -> None:
    if getattr(state.limits(now), feature):
        return
    tier, subject = _subject(state, now)
    raise LicenseLimit(
        f"{what[0].upper()}{what[1:]}: {subject} does not include {LIMIT_LABELS[feature]}; {INSTALL_HINT}.",
        tier=tier,
        limit=feature,
    )


def backend_add_check(state: LicenseState, *, existing: int, now: datetime | None = None) -> None:
    """Adding one backend at runtime to an organisation that has ``existing`` already."""
    _count_limit(state, "backends", existing + 1, f"cannot add backend number {existing + 1}", now)
    _feature(state, "runtime_backends", "cannot add a backend at runtime", now)


def backend_remove_check(state: LicenseState, now: datetime | None = None) -> None:
    _feature(state, "runtime_backends", "cannot remove a backend at runtime", now)


def static_backends_check(state: LicenseState, *, count: int, now: datetime | None = None) -> None:
    _count_limit(state, "backends", count, f"{count} backends are configured (flags and config file)", now)


def instances_check(state: LicenseState, *, live_others: int, now: datetime | None = None) -> None:
    """Starting one more instance beside ``live_others`` live ones."""
    _count_limit(
        state,
        "cloud_workers",
        live_others + 1,
        f"{live_others} other instances are live on this database, so this one would be number {live_others + 1}",
        now,
    )


def dashboard_check(state: LicenseState, now: datetime | None = None) -> None:
    _feature(state, "dashboard", "the dashboard is not available", now)
