"""Pinning runtime backends to instances through the management API."""

import pytest

from backends.models import AuditLog, Backend, BackendSource
from tests.api.conftest import Api, admin_token, api, upstream  # noqa: F401 - fixtures, shared


def body(upstream, **extra) -> dict:  # noqa: F811
    return {"name": "pinned", "type": "openai_compatible", "url": upstream.url + "/v1", **extra}


def test_a_backend_created_without_instances_is_for_every_instance(api: Api, upstream):  # noqa: F811
    created = api.post("/api/v1/backends", body(upstream))

    assert created.status_code == 201, created.json()
    assert created.json()["instances"] == []


def test_instances_pin_a_backend_and_patch_changes_or_clears_them(api: Api, upstream):  # noqa: F811
    created = api.post("/api/v1/backends", body(upstream, instances=["eu-2", "eu-1", "eu-1"]))
    assert created.status_code == 201, created.json()
    assert created.json()["instances"] == ["eu-1", "eu-2"]

    moved = api.patch("/api/v1/backends/pinned", {"instances": ["us-1"]})
    assert moved.json()["instances"] == ["us-1"]
    assert Backend.objects.get(name="pinned").instances == ["us-1"]
    assert AuditLog.objects.filter(backend_name="pinned", changes__has_key="instances", action="update").exists()

    cleared = api.patch("/api/v1/backends/pinned", {"instances": []})
    assert cleared.json()["instances"] == []


@pytest.mark.parametrize("value", ["eu-1", [1], ["bad name"], ["x" * 65], [None], {"eu-1": True}])
def test_instances_must_be_a_list_of_instance_names(api: Api, upstream, value):  # noqa: F811
    response = api.post("/api/v1/backends", body(upstream, instances=value))

    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("instances")
    assert not Backend.objects.exists()


def test_the_instances_of_a_static_backend_follow_its_config_not_the_api(api: Api):  # noqa: F811
    backend = Backend(name="cfg", url="http://127.0.0.1:9/v1", source=BackendSource.STATIC, instances=["one"])
    backend.save()

    response = api.patch("/api/v1/backends/cfg", {"instances": []})

    assert response.status_code == 409
    assert Backend.objects.get(name="cfg").instances == ["one"]
    assert api.get("/api/v1/backends/cfg").json()["instances"] == ["one"]
