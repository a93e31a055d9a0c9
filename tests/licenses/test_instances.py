"""Counting live instances (heartbeats) for the cloud-worker limit, at the database level."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from backends.heartbeat import InstanceHeartbeat
from backends.models import WorkerIdentity
from backends.selectors import live_instances_count
from backends.services import worker_identity_ensure
from eldric_cloud.bootstrap import license_prepare
from eldric_cloud.startup import ConfigError
from orgs.services import license_install


def instances(count: int, *, seen_ago: timedelta = timedelta(seconds=10)) -> None:
    for i in range(count):
        worker_identity_ensure(instance=f"other-{i}")
    WorkerIdentity.objects.filter(instance__startswith="other-").update(last_seen_at=timezone.now() - seen_ago)


@pytest.mark.django_db
def test_only_recent_heartbeats_count_and_never_this_instance():
    now = timezone.now()
    for name, ago in (("fresh", 10), ("edge", 89), ("stale", 91), ("me", 1)):
        worker_identity_ensure(instance=name)
        WorkerIdentity.objects.filter(instance=name).update(last_seen_at=now - timedelta(seconds=ago))
    worker_identity_ensure(instance="never-beat")

    assert live_instances_count(exclude_instance="me", now=now) == 2


@pytest.mark.django_db
def test_a_heartbeat_marks_the_instance_live_and_a_clean_stop_clears_it(settings):
    worker_identity_ensure(instance="beating")
    heartbeat = InstanceHeartbeat(instance="beating", interval=3600)

    heartbeat.start()
    assert live_instances_count(exclude_instance="someone-else") == 1
    heartbeat.stop()

    assert live_instances_count(exclude_instance="someone-else") == 0


@pytest.mark.django_db
@pytest.mark.license_tier("professional")
def test_a_6th_instance_on_professional_refuses_to_start(settings):
    settings.ELDRIC_INSTANCE = "sixth"
    worker_identity_ensure(instance="sixth")
    instances(5)

    with pytest.raises(ConfigError, match=r"Professional tier .* allows 5 cloud workers"):
        license_prepare(SimpleNamespace(license_path=None))


@pytest.mark.django_db
@pytest.mark.license_tier("professional")
def test_a_5th_instance_on_professional_starts_and_registers(settings):
    settings.ELDRIC_INSTANCE = "fifth"
    worker_identity_ensure(instance="fifth")
    instances(4)

    license_prepare(SimpleNamespace(license_path=None))

    assert live_instances_count(exclude_instance="nobody") == 5


@pytest.mark.django_db
@pytest.mark.license_tier("professional")
def test_instances_gone_quiet_for_90_seconds_do_not_count(settings):
    settings.ELDRIC_INSTANCE = "new"
    worker_identity_ensure(instance="new")
    instances(5, seen_ago=timedelta(seconds=95))

    license_prepare(SimpleNamespace(license_path=None))


@pytest.mark.django_db
@pytest.mark.license_tier("free")
def test_an_enterprise_license_has_no_instance_limit(settings, license_key):
    license_install(document=license_key.issue(tier="enterprise"))
    settings.ELDRIC_INSTANCE = "many"
    worker_identity_ensure(instance="many")
    instances(40)

    license_prepare(SimpleNamespace(license_path=None))


@pytest.mark.django_db
def test_stopping_does_not_clear_a_replacement_that_shares_the_name():
    worker_identity_ensure(instance="shared")
    old = InstanceHeartbeat(instance="shared", interval=3600).start()
    new = InstanceHeartbeat(instance="shared", interval=3600, clock=lambda: timezone.now() + timedelta(seconds=1))
    new.start()

    old.stop()

    assert live_instances_count(exclude_instance="someone-else") == 1
    new.stop()
    assert live_instances_count(exclude_instance="someone-else") == 0
