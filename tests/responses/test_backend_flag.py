"""The ``responses_api`` flag: set through the admin API, defaulted by the preset, and carried
into the routing snapshot the gateway reads."""

from __future__ import annotations

import pytest

from backends.models import Backend
from backends.selectors import backend_route

pytestmark = pytest.mark.django_db


def _route(name: str, url: str, kind: str = "openai_compatible", responses_api=None):
    backend = Backend.objects.create(name=name, url=url, kind=kind, responses_api=responses_api)
    return backend_route(backend)


def test_openai_and_xai_serve_responses_by_default_others_do_not():
    assert _route("main", "https://api.openai.com/v1").responses_api is True
    assert _route("grok", "https://api.x.ai/v1").responses_api is True
    assert _route("openai-eu", "http://10.0.0.5:8000/v1").responses_api is True  # named after its provider
    assert _route("vllm", "http://10.0.0.6:8000/v1").responses_api is False
    assert _route("groq", "https://api.groq.com/openai/v1").responses_api is False


def test_the_flag_overrides_the_preset_and_only_applies_to_openai_compatible_backends():
    assert _route("vllm", "http://10.0.0.6:8000/v1", responses_api=True).responses_api is True
    assert _route("main", "https://api.openai.com/v1", responses_api=False).responses_api is False
    assert _route("claude", "https://api.anthropic.com/v1", kind="anthropic", responses_api=True).responses_api is False


@pytest.fixture
def api(transactional_db, settings, fake_provider):
    from rest_framework.test import APIClient

    from tests.api.conftest import ADMIN_TOKEN, Api
    from tests.fakes.server import openai_models

    settings.ELDRIC_ADMIN_TOKEN = ADMIN_TOKEN
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")
    upstream = fake_provider("up")
    upstream.on("GET", "/v1/models", openai_models("model-a"))
    return Api(client), upstream.url + "/v1"


def test_the_api_sets_changes_and_clears_the_flag(api):
    client, url = api
    created = client.post("/api/v1/backends", {"name": "vllm", "type": "openai_compatible", "url": url})
    assert created.status_code == 201 and created.json()["responses_api"] is None

    assert client.patch("/api/v1/backends/vllm", {"responses_api": True}).json()["responses_api"] is True
    assert client.patch("/api/v1/backends/vllm", {"priority": 3}).json()["responses_api"] is True
    assert client.patch("/api/v1/backends/vllm", {"responses_api": None}).json()["responses_api"] is None
    refused = client.patch("/api/v1/backends/vllm", {"responses_api": "yes"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "responses_api"


def test_the_config_file_sets_the_flag_for_a_static_backend(tmp_path):
    from backends.services import backends_static_apply
    from eldric_cloud.startup import load_config_file

    config = tmp_path / "config.json"
    config.write_text(
        '{"backends": [{"name": "vllm", "url": "http://10.0.0.6:8000/v1", "responses_api": true},'
        ' {"name": "openai", "responses_api": false}]}'
    )

    backends_static_apply(specs=load_config_file(str(config)).backends)

    routes = {b.name: backend_route(b) for b in Backend.objects.all()}
    assert routes["vllm"].responses_api is True and routes["openai"].responses_api is False


@pytest.mark.parametrize(("days", "wired"), [(30, True), (0, False)])
def test_the_gateway_wires_the_store_from_the_settings(settings, days, wired):
    from gateway.pipeline import Gateway

    settings.ELDRIC_RESPONSES_STORE_DAYS = days

    gateway = Gateway.from_settings()

    store = gateway.responses.store
    assert (store is not None) is wired
    assert (store in gateway.recorders) is wired
