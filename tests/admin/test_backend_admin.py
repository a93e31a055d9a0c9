"""The Django admin: backends through services, actions, read-only models and audit log."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from backends.models import AuditLog, Backend, BackendSource, DiscoveredModel, GatewaySettings
from backends.selectors import gateway_settings_get, routing_version_get
from tests.fakes.server import openai_models

pytestmark = pytest.mark.django_db(transaction=True)

RAW_KEY = "sk-admin-RAWSECRET-11112222"
CHANGELIST = "/admin/backends/backend/"


@pytest.fixture
def admin_client():
    user = User.objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def upstream(fake_provider):
    return fake_provider("up").on("GET", "/v1/models", openai_models("model-a"))


def add_form(url: str, **overrides) -> dict:
    data = {
        "name": "up",
        "kind": "openai_compatible",
        "url": url,
        "api_key": RAW_KEY,
        "priority": "5",
        "enabled": "on",
        "headers": "{}",
    }
    data.update(overrides)
    return data


def make_backend(name="b1", source=BackendSource.API, **fields) -> Backend:
    backend = Backend(name=name, url="http://127.0.0.1:9/v1", source=source, **fields)
    backend.set_api_key(RAW_KEY)
    backend.save()
    return backend


def test_adding_a_backend_goes_through_the_service(admin_client, upstream):
    version = routing_version_get()

    response = admin_client.post("/admin/backends/backend/add/", add_form(upstream.url + "/v1"))

    assert response.status_code == 302, response.content.decode()[:2000]
    backend = Backend.objects.get()
    assert backend.api_key == RAW_KEY
    assert backend.api_key_hint == "sk-…2222"
    assert routing_version_get() > version
    # Discovered right after the admin's transaction committed.
    assert list(backend.models.values_list("model_id", flat=True)) == ["model-a"]
    entry = AuditLog.objects.get()
    assert (entry.action, entry.source, entry.actor) == ("create", "admin", "root")
    assert entry.changes["api_key"] == [None, "sk-…2222"]


def test_the_admin_accepts_a_host_without_a_dot(admin_client):
    response = admin_client.post("/admin/backends/backend/add/", add_form("http://ollama:11434", enabled=""))

    assert response.status_code == 302
    assert Backend.objects.get().url == "http://ollama:11434"


@pytest.mark.parametrize(
    ("field", "value"), [("url", "ftp://x.example"), ("headers", '{"Bad Name": "v"}'), ("headers", '{"X": 1}')]
)
def test_the_admin_validates_like_the_api(admin_client, field, value):
    data = {**add_form("http://h.example/v1", enabled=""), field: value}

    response = admin_client.post("/admin/backends/backend/add/", data)

    assert response.status_code == 200  # the form again, with errors
    assert not Backend.objects.exists()


def test_the_key_is_write_only(admin_client):
    backend = make_backend()

    page = admin_client.get(f"/admin/backends/backend/{backend.pk}/change/").content.decode()

    assert RAW_KEY not in page
    assert "sk-…2222" in page
    assert backend.api_key_encrypted not in page


def test_an_empty_key_field_keeps_the_key_and_an_edit_is_audited(admin_client):
    backend = make_backend()
    data = add_form("http://127.0.0.1:9/v1", name="b1", api_key="", priority="7", enabled="")

    response = admin_client.post(f"/admin/backends/backend/{backend.pk}/change/", data)

    assert response.status_code == 302
    backend.refresh_from_db()
    assert backend.api_key == RAW_KEY
    assert backend.priority == 7
    entry = AuditLog.objects.get()
    assert entry.action == "update"
    assert entry.changes == {"enabled": [True, False], "priority": [100, 7]}


def test_the_changelist_shows_the_operator_columns(admin_client):
    backend = make_backend(health_status="auth_failed", latency_ms=12.5, priority=3)
    DiscoveredModel.objects.create(backend=backend, model_id="m1")
    make_backend("static-one", source=BackendSource.STATIC)

    page = admin_client.get(CHANGELIST).content.decode()

    for column in ("column-health_status", "column-latency_ms", "column-model_count", "column-priority"):
        assert column in page
    assert "column-enabled" in page and "column-source" in page
    assert "Auth failed" in page
    assert "12.5" in page
    assert RAW_KEY not in page


def test_enable_and_disable_actions_are_audited(admin_client):
    b1, b2 = make_backend("b1"), make_backend("b2", enabled=False)
    version = routing_version_get()

    admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [b1.pk, b2.pk]})
    admin_client.post(CHANGELIST, {"action": "enable", "_selected_action": [b2.pk]})

    assert not Backend.objects.get(pk=b1.pk).enabled
    assert Backend.objects.get(pk=b2.pk).enabled
    assert routing_version_get() > version
    assert [(e.action, e.backend_name, e.source) for e in AuditLog.objects.order_by("id")] == [
        ("disable", "b1", "admin"),
        ("enable", "b2", "admin"),
    ]


def test_the_test_connectivity_action_probes_and_reports(admin_client, upstream):
    backend = make_backend(enabled=False)
    Backend.objects.filter(pk=backend.pk).update(url=upstream.url + "/v1")

    response = admin_client.post(
        CHANGELIST, {"action": "test_connectivity", "_selected_action": [backend.pk]}, follow=True
    )

    assert "b1: healthy (1 models" in " ".join(str(m) for m in response.context["messages"])
    assert Backend.objects.get().health_status == "healthy"
    assert upstream.requests_to("/v1/models")[0].headers["Authorization"] == f"Bearer {RAW_KEY}"


def test_deleting_is_audited_and_static_backends_cannot_be_deleted(admin_client):
    backend = make_backend()
    static = make_backend("static-one", source=BackendSource.STATIC)

    admin_client.post(f"/admin/backends/backend/{backend.pk}/delete/", {"post": "yes"})
    refused = admin_client.post(f"/admin/backends/backend/{static.pk}/delete/", {"post": "yes"})

    assert refused.status_code == 403
    assert list(Backend.objects.values_list("name", flat=True)) == ["static-one"]
    entry = AuditLog.objects.get()
    assert (entry.action, entry.backend_name, entry.source) == ("delete", "b1", "admin")


def test_the_bulk_delete_action_goes_through_the_service(admin_client):
    b1, b2 = make_backend("b1"), make_backend("b2")

    admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [b1.pk, b2.pk], "post": "yes"})

    assert not Backend.objects.exists()
    assert sorted(AuditLog.objects.values_list("backend_name", flat=True)) == ["b1", "b2"]


def test_static_backends_only_switch_on_and_off_in_the_admin(admin_client):
    static = make_backend("static-one", source=BackendSource.STATIC)

    page = admin_client.get(f"/admin/backends/backend/{static.pk}/change/").content.decode()

    assert 'name="url"' not in page
    assert 'name="api_key"' not in page
    assert 'name="enabled"' in page


def test_discovered_models_and_the_audit_log_are_read_only(admin_client):
    backend = make_backend()
    model = DiscoveredModel.objects.create(backend=backend, model_id="m1")
    AuditLog.objects.create(actor="x", source="api", action="create", backend_name="b1")
    entry = AuditLog.objects.get()

    assert admin_client.get("/admin/backends/discoveredmodel/add/").status_code == 403
    assert admin_client.get("/admin/backends/auditlog/add/").status_code == 403
    assert admin_client.post(f"/admin/backends/discoveredmodel/{model.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/backends/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/backends/auditlog/").status_code == 200
    assert admin_client.get(f"/admin/backends/auditlog/{entry.pk}/change/").status_code == 200


def test_instance_settings_edits_bump_the_routing_version(admin_client):
    from backends.models import WorkerIdentity
    from backends.services import worker_identity_ensure

    make_backend("b1")
    worker_identity_ensure(instance="eu-1")
    row = WorkerIdentity.objects.get(instance="eu-1")
    version = routing_version_get()

    response = admin_client.post(
        f"/admin/backends/workeridentity/{row.pk}/change/",
        {"default_backend": "b1", "health_interval_ms": "30000", "controller_url": ""},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert (row.default_backend, row.health_interval_ms) == ("b1", 30000)
    assert routing_version_get() > version


def test_an_instance_health_interval_under_100_ms_is_refused(admin_client):
    from backends.models import WorkerIdentity
    from backends.services import worker_identity_ensure

    worker_identity_ensure(instance="eu-1")
    row = WorkerIdentity.objects.get(instance="eu-1")

    response = admin_client.post(
        f"/admin/backends/workeridentity/{row.pk}/change/",
        {"default_backend": "", "health_interval_ms": "50", "controller_url": ""},
    )

    assert response.status_code == 200
    assert "At least 100 ms." in response.content.decode()
    row.refresh_from_db()
    assert row.health_interval_ms == 60_000


def test_the_gateway_settings_page_never_shows_the_admin_token_hash(admin_client):
    row = gateway_settings_get()

    page = admin_client.get(f"/admin/backends/gatewaysettings/{row.pk}/change/")

    assert page.status_code == 200
    assert "admin_token_hash" not in page.content.decode()
    assert GatewaySettings.objects.count() == 1


def test_the_admin_pins_a_runtime_backend_to_instances(admin_client):
    response = admin_client.post(
        "/admin/backends/backend/add/",
        add_form("http://127.0.0.1:9/v1", enabled="", instances='["eu-2", "eu-1"]'),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Backend.objects.get().instances == ["eu-1", "eu-2"]
    assert "eu-1, eu-2" in admin_client.get(CHANGELIST).content.decode()


@pytest.mark.parametrize("value", ['"eu-1"', '["bad name"]', "[1]"])
def test_the_admin_rejects_instances_that_are_not_a_list_of_names(admin_client, value):
    response = admin_client.post(
        "/admin/backends/backend/add/", add_form("http://127.0.0.1:9/v1", enabled="", instances=value)
    )

    assert response.status_code == 200
    assert not Backend.objects.exists()


def test_the_dashboard_needs_a_staff_login(admin_client):
    anonymous = Client().get("/dashboard/")
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]

    user = User.objects.create_user("bob", password="pw-bob-123")
    plain = Client()
    plain.force_login(user)
    assert "/admin/login/" in plain.get("/dashboard/")["Location"]

    assert admin_client.get("/dashboard/").status_code in (200, 302)
    assert "/admin/login/" not in admin_client.get("/dashboard/").get("Location", "")
