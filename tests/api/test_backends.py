"""/api/v1/backends: create, read, change, delete."""

import pytest

from backends.models import Backend, BackendSource
from backends.probe import ProbeResult
from backends.selectors import routing_snapshot_build, routing_version_get
from backends.services import backend_health_record
from tests.api.conftest import RAW_KEY, backend_body
from tests.fakes.server import openai_models

pytestmark = pytest.mark.django_db(transaction=True)


def make_static(name="static-one", url="http://127.0.0.1:9/v1") -> Backend:
    backend = Backend(name=name, url=url, source=BackendSource.STATIC, priority=1)
    backend.set_api_key("sk-static-key-000000001111")
    backend.save()
    return backend


def test_it_creates_a_backend_and_discovers_its_models_at_once(api, upstream):
    version = routing_version_get()

    response = api.post("/api/v1/backends", backend_body(upstream, priority=3, headers={"X-Team": "ml"}))

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["name"] == "up"
    assert data["type"] == "openai_compatible"
    assert data["priority"] == 3
    assert data["enabled"] is True
    assert data["source"] == "api"
    assert data["api_key"] == "sk-…5b4a"
    assert data["headers"] == {"X-Team": "ml"}
    assert data["health_status"] == "healthy"
    assert data["model_count"] == 2
    assert data["models"] == ["model-a", "model-b"]
    assert upstream.requests_to("/v1/models")[0].headers["Authorization"] == f"Bearer {RAW_KEY}"
    # Routable: the version moved, so every gateway process rebuilds, and the snapshot routes it.
    assert routing_version_get() > version
    snapshot = routing_snapshot_build()
    assert [r.name for r in snapshot.model_routes["model-a"]] == ["up"]


def test_it_uses_the_defaults_of_the_seed_body(api, upstream):
    response = api.post("/api/v1/backends", {"name": "up", "type": "openai_compatible", "url": upstream.url + "/v1"})

    assert response.status_code == 201
    assert response.json()["priority"] == 100
    assert response.json()["enabled"] is True
    assert response.json()["api_key"] == ""


def test_a_disabled_backend_is_not_probed_on_create(api, upstream):
    response = api.post("/api/v1/backends", backend_body(upstream, enabled=False))

    assert response.status_code == 201
    assert response.json()["health_status"] == "unknown"
    assert upstream.received == []


def test_an_unreachable_backend_is_still_created(api):
    response = api.post(
        "/api/v1/backends", {"name": "gone", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1"}
    )

    assert response.status_code == 201
    assert response.json()["health_status"] == "unhealthy"
    assert "cannot connect" in response.json()["last_error"]


def test_a_rejected_key_shows_as_auth_failed(api, rejecting_upstream):
    response = api.post("/api/v1/backends", backend_body(rejecting_upstream, name="locked"))

    assert response.status_code == 201
    assert response.json()["health_status"] == "auth_failed"
    listed = api.get("/api/v1/backends").json()["data"]
    assert [(b["name"], b["health_status"]) for b in listed] == [("locked", "auth_failed")]


@pytest.mark.parametrize(
    ("override", "field", "fragment"),
    [
        pytest.param({"type": "grpc"}, "type", "Unknown type 'grpc'", id="unknown-type"),
        pytest.param({"url": "ftp://example.com/v1"}, "url", "http:// or https://", id="ftp-url"),
        pytest.param({"url": "not a url"}, "url", "", id="garbage-url"),
        pytest.param({"url": "http://"}, "url", "with a host", id="no-host"),
        pytest.param({"url": "http://h:99999/v1"}, "url", "Not a valid URL", id="bad-port"),
        pytest.param({"url": "https://user:pw@h.example/v1"}, "url", "credentials", id="credentials-in-url"),
        pytest.param({"priority": -1}, "priority", "greater than or equal to 0", id="negative-priority"),
        pytest.param({"priority": 2**40}, "priority", "less than or equal to", id="huge-priority"),
        pytest.param({"priority": "high"}, "priority", "whole number", id="priority-string"),
        pytest.param({"priority": 1.5}, "priority", "whole number", id="priority-float"),
        pytest.param({"priority": True}, "priority", "whole number", id="priority-bool"),
        pytest.param({"enabled": "yes"}, "enabled", "true or false", id="enabled-string"),
        pytest.param({"enabled": 1}, "enabled", "true or false", id="enabled-int"),
        pytest.param({"name": "has spaces"}, "name", "", id="name-not-slug"),
        pytest.param({"name": 42}, "name", "string", id="name-number"),
        pytest.param({"name": "x" * 65}, "name", "64", id="name-too-long"),
        pytest.param({"name": "test"}, "name", "reserved", id="name-reserved"),
        pytest.param({"api_key": 1234}, "api_key", "string", id="key-number"),
        pytest.param({"headers": "X-A: b"}, "headers", "dictionary", id="headers-string"),
        pytest.param({"headers": {"X-A": 1}}, "headers", "string", id="header-value-number"),
        pytest.param({"headers": {"Bad Name": "v"}}, "headers", "not a valid header name", id="header-name"),
        pytest.param({"headers": {"X-A": "v\r\nX-B: w"}}, "headers", "printable ASCII", id="header-injection"),
        pytest.param({"api-key": "sk-typo"}, "api-key", "Unknown field", id="unknown-field"),
        pytest.param({"api_key": "sk-ключ"}, "api_key", "printable ASCII", id="key-not-ascii"),
        pytest.param({"api_key": "sk a"}, "api_key", "without spaces", id="key-with-space"),
        pytest.param({"headers": {"X-A": "é"}}, "headers", "printable ASCII", id="header-not-ascii"),
        pytest.param({"url": "https://hé.example/v1"}, "url", "printable ASCII", id="url-not-ascii"),
        pytest.param({"url": "https://a..b/v1"}, "url", "with a host", id="url-bad-host"),
    ],
)
def test_it_rejects_an_invalid_field_naming_it(api, upstream, override, field, fragment):
    response = api.post("/api/v1/backends", backend_body(upstream, **override))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field or error["param"].startswith(field + ".")
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(field)
    assert fragment in error["message"]
    assert not Backend.objects.exists()


@pytest.mark.parametrize("missing", ["name", "type", "url"])
def test_it_requires_name_type_and_url(api, upstream, missing):
    body = backend_body(upstream)
    del body[missing]

    response = api.post("/api/v1/backends", body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == missing
    assert "required" in response.json()["error"]["message"]


def test_it_rejects_a_duplicate_name(api, upstream):
    assert api.post("/api/v1/backends", backend_body(upstream)).status_code == 201

    response = api.post("/api/v1/backends", backend_body(upstream, url="http://other.example/v1"))

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"
    assert "already exists" in response.json()["error"]["message"]
    assert Backend.objects.get().url == upstream.url + "/v1"


@pytest.mark.parametrize("body", [["a list"], "a string", 42, None])
def test_it_rejects_a_body_that_is_not_an_object(api, body):
    response = api.post("/api/v1/backends", body)

    assert response.status_code == 400
    assert "error" in response.json()


def test_it_rejects_malformed_json(api):
    response = api.client.post("/api/v1/backends", data=b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]["message"]


def test_list_keeps_its_shape(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream, priority=5))
    api.post("/api/v1/backends", backend_body(upstream, name="first", priority=1, enabled=False))

    response = api.get("/api/v1/backends")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [b["name"] for b in body["data"]] == ["first", "up"]
    assert set(body["data"][0]) == {
        "name",
        "organisation",
        "type",
        "url",
        "priority",
        "enabled",
        "source",
        "instances",
        "api_key",
        "headers",
        "responses_api",
        "health_status",
        "latency_ms",
        "last_checked_at",
        "last_error",
        "consecutive_failures",
        "model_count",
        "routable",
        "circuit",
        "rate_limited_until",
        "traffic",
    }


def test_get_one_backend(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))

    response = api.get("/api/v1/backends/up")

    assert response.status_code == 200
    assert response.json()["name"] == "up"
    assert response.json()["models"] == ["model-a", "model-b"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_unknown_backend_is_404_in_openai_shape(api, method):
    response = getattr(api, method)("/api/v1/backends/nope")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No backend named 'nope'."
    assert response.json()["error"]["type"] == "not_found_error"


def test_patch_changes_fields_and_rediscovers_on_a_new_url(api, upstream, fake_provider):
    api.post("/api/v1/backends", backend_body(upstream))
    other = fake_provider("other").on("GET", "/v1/models", openai_models_c())
    version = routing_version_get()

    response = api.patch("/api/v1/backends/up", {"url": other.url + "/v1", "priority": 7, "headers": {"X-B": "2"}})

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["url"] == other.url + "/v1"
    assert data["priority"] == 7
    assert data["headers"] == {"X-B": "2"}
    assert data["models"] == ["model-c"]
    assert data["health_status"] == "healthy"
    assert routing_version_get() > version


def openai_models_c():
    return openai_models("model-c")


def test_patch_replaces_and_removes_the_key(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))

    replaced = api.patch("/api/v1/backends/up", {"api_key": "sk-second-key-00009999"})
    assert replaced.json()["api_key"] == "sk-…9999"
    assert Backend.objects.get().api_key == "sk-second-key-00009999"

    removed = api.patch("/api/v1/backends/up", {"api_key": ""})
    assert removed.json()["api_key"] == ""
    assert Backend.objects.get().api_key == ""


def test_patch_disable_takes_the_backend_out_of_routing(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))
    assert "model-a" in routing_snapshot_build().model_routes

    response = api.patch("/api/v1/backends/up", {"enabled": False})

    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert "model-a" not in routing_snapshot_build().model_routes


def test_patch_without_changes_records_nothing(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))
    version = routing_version_get()

    response = api.patch("/api/v1/backends/up", {"priority": 100})

    assert response.status_code == 200
    assert routing_version_get() == version


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": -5}, "priority"),
        ({"enabled": "no"}, "enabled"),
        ({"url": "gopher://x"}, "url"),
        ({"type": "soap"}, "type"),
        ({"name": "renamed"}, "name"),
        ({"health_status": "healthy"}, "health_status"),
    ],
)
def test_patch_validates_like_create(api, upstream, body, field):
    api.post("/api/v1/backends", backend_body(upstream))

    response = api.patch("/api/v1/backends/up", body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == field


def test_delete_takes_the_backend_out_of_routing_at_once(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))
    version = routing_version_get()

    response = api.delete("/api/v1/backends/up")

    assert response.status_code == 204
    assert not Backend.objects.exists()
    assert routing_version_get() > version
    assert routing_snapshot_build().model_routes == {}


def test_a_static_backend_cannot_be_deleted(api):
    make_static()

    response = api.delete("/api/v1/backends/static-one")

    assert response.status_code == 409
    error = response.json()["error"]
    assert "--backends or the config file" in error["message"]
    assert error["code"] == "conflict"
    assert Backend.objects.filter(name="static-one").exists()


def test_a_static_backend_can_be_disabled_and_enabled(api):
    make_static()

    off = api.patch("/api/v1/backends/static-one", {"enabled": False})
    on = api.patch("/api/v1/backends/static-one", {"enabled": True})

    assert off.status_code == 200 and off.json()["enabled"] is False
    assert on.status_code == 200 and on.json()["enabled"] is True


def test_other_fields_of_a_static_backend_are_409(api):
    make_static()

    response = api.patch("/api/v1/backends/static-one", {"priority": 9})

    assert response.status_code == 409
    assert "config file" in response.json()["error"]["message"]
    assert Backend.objects.get().priority == 1


def test_auth_failed_backends_are_not_routable(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))
    backend = Backend.objects.get()
    backend_health_record(backend=backend, result=ProbeResult("auth_failed", 1.0, 401, "HTTP 401: bad key"))

    data = api.get("/api/v1/backends/up").json()
    catalogue = api.get("/api/v1/models").json()["data"]

    assert data["health_status"] == "auth_failed"
    assert data["last_error"] == "HTTP 401: bad key"
    assert [(m["id"], m["routable"]) for m in catalogue] == [("model-a", False), ("model-b", False)]
