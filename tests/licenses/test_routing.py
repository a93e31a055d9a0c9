"""Per-organisation routing views, and Free's configuration-order routing."""

import pytest
from openai import NotFoundError, OpenAI

from backends.models import Backend, BackendSource, DiscoveredModel
from backends.selectors import routing_snapshot_build
from backends.services import backends_static_apply, gateway_settings_update
from backends.specs import BackendSpec
from gateway.breaker import BreakerBoard
from gateway.routing import plan
from orgs.access import access_snapshot_build
from orgs.keys import key_create
from orgs.models import Organisation
from orgs.services import license_install
from tests.fakes.server import openai_models, reply_json


def openai_chat(text: str):
    return reply_json(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )


def models_of(backend: Backend, *ids: str) -> None:
    DiscoveredModel.objects.bulk_create([DiscoveredModel(backend=backend, model_id=i) for i in ids])


def runtime(name: str, organisation: str, url: str = "http://127.0.0.1:9/v1", priority: int = 100) -> Backend:
    return Backend.objects.create(
        name=name,
        url=url,
        organisation=Organisation.objects.get(slug=organisation),
        source=BackendSource.API,
        priority=priority,
    )


@pytest.fixture
def tenants(db, license_key):
    """default: static a, b. acme (shares default): c. solo (does not share): d."""
    license_install(document=license_key.issue(organisation="acme", tier="standard"))
    license_install(document=license_key.issue(organisation="solo", tier="standard"))
    Organisation.objects.filter(slug="solo").update(share_default_backends=False)
    backends_static_apply(
        specs=[BackendSpec(name=n, url=f"http://127.0.0.1:9/{n}", kind="openai_compatible") for n in ("a", "b")]
    )
    gateway_settings_update(default_backend="a")
    models_of(Backend.objects.get(name="a"), "shared-model")
    models_of(Backend.objects.get(name="b"), "shared-model", "b-model")
    models_of(runtime("c", "acme"), "acme-model")
    models_of(runtime("d", "solo"), "solo-model")


def test_each_organisation_sees_its_own_backends_plus_shared_defaults(tenants):
    snapshot = routing_snapshot_build()

    assert set(snapshot.for_org("acme").backends) == {"a", "b", "c"}
    assert set(snapshot.for_org("solo").backends) == {"d"}
    assert set(snapshot.for_org("").backends) == {"a", "b"}
    assert set(snapshot.for_org("default").backends) == {"a", "b"}
    assert snapshot.for_org("nobody") is snapshot.for_org("default")
    # The whole picture (for /health) still has every backend.
    assert set(snapshot.backends) == {"a", "b", "c", "d"}


def test_the_default_backend_applies_only_where_it_is_visible(tenants):
    snapshot = routing_snapshot_build()
    board = BreakerBoard(failure_threshold=3, cooldown=30.0)

    assert plan(snapshot.for_org("acme"), "unlisted", board).candidates[0].name == "a"
    refused = plan(snapshot.for_org("solo"), "unlisted", board)
    assert refused.error is not None and refused.error.status == 404
    # Another organisation's model is unknown here, and does not fall back to a's default either.
    assert plan(snapshot.for_org("solo"), "acme-model", board).error.status == 404


def test_models_are_listed_per_organisation(tenants):
    import json

    snapshot = routing_snapshot_build()

    def ids(slug):
        return sorted(m["id"] for m in json.loads(snapshot.for_org(slug).models_body)["data"])

    assert ids("acme") == ["acme-model", "b-model", "shared-model"]
    assert ids("solo") == ["solo-model"]
    assert ids("") == ["b-model", "shared-model"]


def test_sharing_can_be_switched_and_the_routing_version_moves(tenants):
    from backends.selectors import routing_version_get

    before = routing_version_get()
    acme = Organisation.objects.get(slug="acme")
    acme.share_default_backends = False
    acme.save()

    assert routing_version_get() > before
    assert set(routing_snapshot_build().for_org("acme").backends) == {"c"}


# --- Free: configuration order instead of priority ----------------------------------------------


def order_of(model: str, slug: str = "") -> list[str]:
    return [r.name for r in routing_snapshot_build().for_org(slug).model_routes[model]]


def static_pair() -> None:
    # "first" is listed first but has the worse priority.
    backends_static_apply(
        specs=[
            BackendSpec(name="first", url="http://127.0.0.1:9/1", kind="openai_compatible", priority=50),
            BackendSpec(name="second", url="http://127.0.0.1:9/2", kind="openai_compatible", priority=1),
        ]
    )
    for name in ("first", "second"):
        models_of(Backend.objects.get(name=name), "m")


@pytest.mark.django_db
@pytest.mark.license_tier("free")
def test_free_routes_by_configuration_order():
    static_pair()

    assert order_of("m") == ["first", "second"]


@pytest.mark.django_db
@pytest.mark.license_tier("standard")
def test_standard_routes_by_priority():
    static_pair()

    assert order_of("m") == ["second", "first"]


@pytest.mark.django_db
@pytest.mark.license_tier("free")
def test_free_configuration_order_follows_the_file_after_a_reorder():
    static_pair()
    backends_static_apply(
        specs=[
            BackendSpec(name="second", url="http://127.0.0.1:9/2", kind="openai_compatible", priority=1),
            BackendSpec(name="first", url="http://127.0.0.1:9/1", kind="openai_compatible", priority=50),
        ]
    )

    assert order_of("m") == ["second", "first"]


# --- Real requests: a principal of one organisation never reaches another's backend -----------


def test_a_client_key_of_one_organisation_never_reaches_anothers_backend(db, license_key, fake_provider, gateway):
    upstream_a = fake_provider("upstream-a").on("GET", "/v1/models", openai_models("private-a"))
    upstream_a.on("POST", "/v1/chat/completions", openai_chat("from a"))
    upstream_b = fake_provider("upstream-b").on("GET", "/v1/models", openai_models("private-b"))
    upstream_b.on("POST", "/v1/chat/completions", openai_chat("from b"))
    for slug in ("org-a", "org-b"):
        license_install(document=license_key.issue(organisation=slug, tier="standard"))
    Organisation.objects.filter(slug__in=["org-a", "org-b"]).update(share_default_backends=False)
    models_of(runtime("backend-a", "org-a", url=upstream_a.url + "/v1"), "private-a")
    models_of(runtime("backend-b", "org-b", url=upstream_b.url + "/v1"), "private-b")
    key_b = key_create(name="b", organisation="org-b").key
    gateway.gateway.snapshots.install_access(access_snapshot_build())
    gateway.gateway.snapshots.install(routing_snapshot_build())
    client_b = OpenAI(base_url=gateway.url + "/v1", api_key=key_b, max_retries=0)

    answer = client_b.chat.completions.create(model="private-b", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(NotFoundError):
        client_b.chat.completions.create(model="private-a", messages=[{"role": "user", "content": "hi"}])

    assert answer.choices[0].message.content == "from b"
    assert [m.id for m in client_b.models.list()] == ["private-b"]
    assert upstream_a.requests_to("/v1/chat/completions") == []
    assert len(upstream_b.requests_to("/v1/chat/completions")) == 1
