"""Static backends follow the flags/config file, without undoing an operator's runtime disable."""

import pytest

from backends.models import AuditLog, Backend
from backends.selectors import routing_version_get
from backends.services import backend_set_enabled, backends_static_apply, routing_version_bump
from backends.specs import BackendSpec

pytestmark = pytest.mark.django_db

SPEC = BackendSpec(name="xai", url="https://api.x.ai/v1", api_key="xai-secret-1111", priority=1)


def test_applying_the_same_config_twice_changes_nothing():
    backends_static_apply(specs=[SPEC])
    version = routing_version_get()

    diff = backends_static_apply(specs=[SPEC])

    assert not diff
    assert routing_version_get() == version


def test_a_runtime_disable_survives_a_restart_until_the_config_itself_changes_enabled():
    backends_static_apply(specs=[SPEC])
    backend_set_enabled(backend=Backend.objects.get(name="xai"), enabled=False, actor="ops", source="api")

    backends_static_apply(specs=[SPEC])  # a restart with the same configuration
    assert Backend.objects.get(name="xai").enabled is False

    backends_static_apply(specs=[BackendSpec(**{**SPEC.__dict__, "enabled": False})])
    backends_static_apply(specs=[SPEC])  # the file now says enabled again: that is a change
    assert Backend.objects.get(name="xai").enabled is True


def test_backends_no_longer_configured_are_removed_and_audited():
    backends_static_apply(specs=[SPEC, BackendSpec(name="groq", url="https://api.groq.com/openai/v1")])
    routing_version_bump()

    diff = backends_static_apply(specs=[SPEC])

    assert diff.removed == ["groq"]
    assert not Backend.objects.filter(name="groq").exists()
    assert AuditLog.objects.filter(backend_name="groq", source="config").exists()


def test_the_key_is_stored_encrypted_and_only_shown_masked():
    backends_static_apply(specs=[SPEC])
    backend = Backend.objects.get(name="xai")

    assert "xai-secret-1111" not in backend.api_key_encrypted
    assert backend.api_key == "xai-secret-1111"
    assert backend.api_key_hint == "xai-…1111"
