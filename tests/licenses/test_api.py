"""/api/v1/licenses, and the API's and admin's 403 license_limit for every tier's gates."""

import json

import pytest
from rest_framework.test import APIClient

from backends.models import Backend, BackendSource
from backends.services import backends_static_apply
from backends.specs import BackendSpec
from orgs.licenses import license_state_get
from orgs.models import Organisation
from tests.api.conftest import ADMIN_TOKEN, Api, backend_body
from tests.fakes.server import openai_models
from tests.licenses.support import tampered

pytestmark = pytest.mark.license_tier("free")


@pytest.fixture
def api(transactional_db, settings) -> Api:
    settings.ELDRIC_ADMIN_TOKEN = ADMIN_TOKEN
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")
    return Api(client)


@pytest.fixture
def upstream(fake_provider):
    fake = fake_provider("up")
    fake.on("GET", "/v1/models", openai_models("model-a"))
    return fake


def install(api, document: str):
    return api.client.post("/api/v1/licenses", data=document, content_type="application/json")


def static(*names: str) -> None:
    backends_static_apply(
        specs=[BackendSpec(name=n, url=f"http://127.0.0.1:9/{n}", kind="openai_compatible") for n in names]
    )


def test_post_installs_a_license_and_get_lists_every_organisation(api, license_key):
    response = install(api, license_key.issue(organisation="acme", tier="professional", days=90))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["organisation"], body["tier"], body["status"]) == ("acme", "professional", "valid")
    assert body["limits"]["backends"] == 15
    listed = {row["organisation"]: row for row in api.get("/api/v1/licenses").json()["data"]}
    assert listed["acme"]["tier"] == "professional"
    assert listed["default"] == {**listed["default"], "tier": "free", "status": "none", "license_id": None}
    assert Organisation.objects.filter(slug="acme").exists()
    assert "signature" not in json.dumps(listed)


def test_a_tampered_license_is_refused_and_changes_nothing(api, license_key):
    document = license_key.issue(tier="standard")

    response = install(api, tampered(document, tier="enterprise"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_license"
    assert "does not verify" in response.json()["error"]["message"]
    assert license_state_get().effective_tier() == "free"


@pytest.mark.parametrize("body", ["not json", "[1]", '"a string"'])
def test_a_body_that_is_not_a_license_is_a_400(api, body):
    response = api.client.post("/api/v1/licenses", data=body, content_type="application/json")

    assert response.status_code == 400


def test_the_license_api_needs_the_admin_token(transactional_db, license_key):
    response = APIClient().post("/api/v1/licenses", data=license_key.issue(), content_type="application/json")

    assert response.status_code == 401


# --- The gates through the API -------------------------------------------------------------


def assert_license_limit(response, tier_label: str, limit_text: str) -> None:
    assert response.status_code == 403, response.json()
    error = response.json()["error"]
    assert error["code"] == "license_limit"
    assert error["type"] == "permission_error"
    assert tier_label in error["message"] and limit_text in error["message"]


def test_free_refuses_runtime_add(api, upstream):
    response = api.post("/api/v1/backends", backend_body(upstream))

    assert_license_limit(response, "Free tier", "runtime backend add/remove")
    assert not Backend.objects.exists()


def test_free_refuses_the_3rd_backend(api, upstream):
    static("one", "two")

    response = api.post("/api/v1/backends", backend_body(upstream))

    assert_license_limit(response, "Free tier", "allows 2 backends per worker")


def test_free_refuses_runtime_remove_even_after_expiry(api, upstream, license_key):
    install(api, license_key.issue(tier="standard"))
    assert api.post("/api/v1/backends", backend_body(upstream)).status_code == 201
    install(api, license_key.issue(tier="free"))

    response = api.delete("/api/v1/backends/up")

    assert_license_limit(response, "Free tier", "runtime backend add/remove")
    assert Backend.objects.filter(name="up").exists()
    # Enabling and disabling is not add/remove: still allowed.
    assert api.patch("/api/v1/backends/up", {"enabled": False}).status_code == 200


@pytest.mark.parametrize(("tier", "limit"), [("standard", 5), ("professional", 15)])
def test_each_tier_allows_its_backends_and_refuses_one_more(api, upstream, license_key, tier, limit):
    install(api, license_key.issue(tier=tier))
    static(*[f"s{i}" for i in range(limit - 1)])

    assert api.post("/api/v1/backends", backend_body(upstream, enabled=False)).status_code == 201
    response = api.post("/api/v1/backends", backend_body(upstream, name="extra", enabled=False))

    assert_license_limit(response, f"{tier.title()} tier", f"allows {limit} backends per worker")
    assert api.delete("/api/v1/backends/up").status_code == 204


def test_enterprise_has_no_backend_limit(api, upstream, license_key):
    install(api, license_key.issue(tier="enterprise"))
    static(*[f"s{i}" for i in range(20)])

    assert api.post("/api/v1/backends", backend_body(upstream, enabled=False)).status_code == 201


def test_an_organisations_own_license_governs_its_backends(api, upstream, license_key):
    install(api, license_key.issue(organisation="acme", tier="standard"))

    created = api.post("/api/v1/backends", backend_body(upstream, organisation="acme"))
    refused = api.post("/api/v1/backends", backend_body(upstream, name="mine"))  # default org: Free

    assert created.status_code == 201 and created.json()["organisation"] == "acme"
    assert Backend.objects.get(name="up").organisation.slug == "acme"
    assert_license_limit(refused, "Free tier", "organisation 'default'")
    unknown = api.post("/api/v1/backends", backend_body(upstream, name="x", organisation="nobody"))
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "organisation"


# --- Dashboard and admin -------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["free", "standard", "professional", "enterprise"])
def test_the_dashboard_needs_professional(admin_client, license_key, tier):
    from orgs.services import license_install

    license_install(document=license_key.issue(tier=tier))

    response = admin_client.get("/dashboard/")

    if tier in ("professional", "enterprise"):
        assert response.status_code == 200
    else:
        # A page naming the tier needed (dashboard/views.py); its JSON endpoint answers license_limit.
        assert response.status_code == 403
        assert "license_limit" in response.content.decode() and "Professional" in response.content.decode()
        error = admin_client.get("/dashboard/api/state").json()["error"]
        assert error["code"] == "license_limit" and "the dashboard" in error["message"]


def admin_add_form(url: str, name: str = "adm") -> dict:
    return {"name": name, "kind": "openai_compatible", "url": url, "api_key": "", "priority": "100", "headers": "{}"}


def test_the_admin_answers_403_on_free_and_adds_on_standard(admin_client, license_key):
    from orgs.services import license_install

    response = admin_client.post("/admin/backends/backend/add/", admin_add_form("http://127.0.0.1:9/v1"))

    assert response.status_code == 403
    assert b"license_limit" in response.content and b"Free tier" in response.content
    assert not Backend.objects.exists()
    license_install(document=license_key.issue(tier="standard"))
    assert admin_client.post("/admin/backends/backend/add/", admin_add_form("http://127.0.0.1:9/v1")).status_code == 302
    assert Backend.objects.get().organisation.slug == "default"


def test_the_admin_refuses_runtime_delete_on_free(admin_client, license_key):
    from orgs.services import license_install

    license_install(document=license_key.issue(tier="standard"))
    admin_client.post("/admin/backends/backend/add/", admin_add_form("http://127.0.0.1:9/v1"))
    license_install(document=license_key.issue(tier="free"))
    backend = Backend.objects.get()

    response = admin_client.post(f"/admin/backends/backend/{backend.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Backend.objects.filter(pk=backend.pk, source=BackendSource.API).exists()


def test_a_license_is_installed_by_pasting_it_in_the_admin(admin_client, license_key):
    response = admin_client.post(
        "/admin/orgs/license/add/", {"document": license_key.issue(tier="professional", days=10)}
    )

    assert response.status_code == 302
    assert license_state_get().effective_tier() == "professional"
    listing = admin_client.get("/admin/orgs/license/")
    assert b"professional" in listing.content


def test_the_admin_rejects_a_tampered_paste(admin_client, license_key):
    response = admin_client.post(
        "/admin/orgs/license/add/", {"document": tampered(license_key.issue(tier="standard"), tier="enterprise")}
    )

    assert response.status_code == 200
    assert b"does not verify" in response.content
    assert license_state_get().status() == "none"


def test_the_admin_shows_the_grace_warning(admin_client, license_key):
    from datetime import UTC, datetime, timedelta

    from orgs.services import license_install

    license_install(document=license_key.issue(tier="standard", days=1, now=datetime.now(UTC) - timedelta(days=3)))

    listing = admin_client.get("/admin/orgs/license/")

    assert b"grace period" in listing.content


def test_a_license_file_can_be_uploaded_in_the_admin(admin_client, license_key):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("acme.json", license_key.issue(organisation="acme", tier="standard").encode())

    response = admin_client.post("/admin/orgs/license/add/", {"document": "", "upload": upload})

    assert response.status_code == 302
    assert license_state_get("acme").effective_tier() == "standard"


def test_the_organisation_and_license_admin_pages_render(admin_client, license_key):
    from orgs.services import license_install

    row = license_install(document=license_key.issue(organisation="acme", tier="standard"))
    acme = Organisation.objects.get(slug="acme")

    for url in (
        "/admin/orgs/organisation/",
        f"/admin/orgs/organisation/{acme.pk}/change/",
        "/admin/orgs/organisation/add/",
        "/admin/orgs/license/",
        "/admin/orgs/license/add/",
        f"/admin/orgs/license/{row.pk}/change/",
        "/admin/backends/backend/",
        "/admin/backends/backend/add/",
    ):
        assert admin_client.get(url).status_code == 200, url
    page = admin_client.get(f"/admin/orgs/organisation/{acme.pk}/change/").content
    assert b"standard (valid)" in page
