"""The SSRF deny list: the pure decision, and where it is enforced (API, admin, start-up).

No traffic goes to a denied address: names resolve through a fake resolver, and the API
paths use literal addresses that are refused before anything connects.
"""

import dataclasses
import re
import socket
from types import SimpleNamespace

import pytest

from backends.models import Backend
from backends.specs import BackendSpec
from backends.url_policy import UrlPolicy
from eldric_cloud.startup import ConfigError
from tests.fakes.server import openai_models
from tests.hardening_api.conftest import assert_openai_error


def resolver(table: dict[str, list[str]]):
    """A fake getaddrinfo: host -> addresses; anything else does not resolve."""
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]

    getaddrinfo.asked = asked
    return getaddrinfo


DEFAULT = UrlPolicy.parse([])


# --- the decision ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, rule",
    [
        ("http://169.254.169.254/latest/meta-data", "169.254.0.0/16"),
        ("http://169.254.169.254./v1", "169.254.0.0/16"),
        ("http://[::ffff:169.254.169.254]/v1", "169.254.0.0/16"),
        ("http://[fd00:ec2::254]/v1", "fd00:ec2::254/128"),
        ("http://[fe80::1%25eth0]:8080/v1", "fe80::/10"),
        ("http://metadata.google.internal/computeMetadata/v1", "metadata.google.internal"),
        ("http://METADATA/v1", "metadata"),
    ],
)
def test_link_local_and_metadata_addresses_are_denied_by_default(url, rule):
    fake = resolver({})

    denial = DEFAULT.check(url, resolver=fake)

    assert denial is not None and denial.rule == rule
    assert rule in str(denial)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:11434", "http://127.0.0.1:8000/v1", "http://192.168.1.2/v1", "https://api.openai.com/v1"]
)
def test_private_and_public_addresses_stay_allowed(url):
    assert DEFAULT.check(url, resolver=resolver({"api.openai.com": ["162.159.140.245"]})) is None


def test_every_address_a_name_resolves_to_is_checked():
    fake = resolver({"sneaky.example": ["10.0.0.7", "::ffff:169.254.169.254"]})

    denial = DEFAULT.check("https://sneaky.example/v1", resolver=fake)

    assert denial.rule == "169.254.0.0/16"
    assert denial.address == "169.254.169.254"
    assert "sneaky.example (it resolves to 169.254.169.254)" in str(denial)
    assert fake.asked == ["sneaky.example"]


def test_a_name_that_does_not_resolve_is_not_denied():
    assert DEFAULT.check("http://ollama:11434", resolver=resolver({})) is None


def test_operator_rules_add_cidrs_and_names_with_their_subdomains():
    policy = UrlPolicy.parse(["10.0.0.0/8", "internal.corp", "2001:db8::/32"])
    fake = resolver({"llm.example": ["10.1.2.3"]})

    assert policy.check("http://llm.example/v1", resolver=fake).rule == "10.0.0.0/8"
    assert policy.check("http://gpu.internal.corp/v1", resolver=fake).rule == "internal.corp"
    assert policy.check("http://internal.corp/v1", resolver=fake).rule == "internal.corp"
    assert policy.check("http://[2001:db8::1]/v1", resolver=fake).rule == "2001:db8::/32"
    assert policy.check("http://notinternal.corp/v1", resolver=fake) is None
    # The built-in rules stay on top of the operator's.
    assert policy.check("http://169.254.1.1/v1", resolver=fake).rule == "169.254.0.0/16"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://x/", "a b"])
def test_a_malformed_rule_is_named(entry):
    with pytest.raises(ValueError, match="ELDRIC_BACKEND_URL_DENY"):
        UrlPolicy.parse([entry])


# --- where it is enforced ---------------------------------------------------------------------

DENIED = "http://169.254.169.254/v1"


@pytest.mark.django_db(transaction=True)
def test_creating_a_backend_on_a_denied_address_is_a_400_naming_url_and_the_rule(api):
    response = api.post("/api/v1/backends", {"name": "meta", "type": "openai_compatible", "url": DENIED})

    error = assert_openai_error(response, 400, param="url")
    assert "169.254.0.0/16" in error["message"]
    assert not Backend.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_operator_list_applies_to_updates(api, settings, upstream_fake):
    api.post("/api/v1/backends", {"name": "b1", "type": "openai_compatible", "url": upstream_fake.url + "/v1"})
    settings.ELDRIC_BACKEND_URL_DENY = ["10.0.0.0/8"]

    response = api.patch("/api/v1/backends/b1", {"url": "http://10.9.8.7:11434"})

    assert "10.0.0.0/8" in assert_openai_error(response, 400, param="url")["message"]
    assert Backend.objects.get().url == upstream_fake.url + "/v1"


@pytest.mark.django_db(transaction=True)
def test_testing_a_denied_config_is_a_400(api):
    response = api.post("/api/v1/backends/test", {"type": "ollama", "url": "http://[fd00:ec2::254]"})

    assert "fd00:ec2::254/128" in assert_openai_error(response, 400, param="url")["message"]


@pytest.mark.django_db(transaction=True)
def test_testing_a_saved_backend_the_list_now_denies_is_a_400_and_is_recorded(api, settings, upstream_fake):
    api.post("/api/v1/backends", {"name": "b1", "type": "openai_compatible", "url": upstream_fake.url + "/v1"})
    before = len(upstream_fake.requests_to("/v1/models"))
    settings.ELDRIC_BACKEND_URL_DENY = ["127.0.0.0/8"]

    response = api.post("/api/v1/backends/b1/test")

    assert "127.0.0.0/8" in assert_openai_error(response, 400, param="url")["message"]
    assert len(upstream_fake.requests_to("/v1/models")) == before  # nothing was sent
    backend = Backend.objects.get()
    assert backend.health_status == "unhealthy"
    assert "127.0.0.0/8" in backend.last_error


def test_the_probe_checks_again_right_before_it_connects(settings, upstream_fake):
    # A name that was harmless when saved and now resolves to the metadata service.
    from backends.probe import probe
    from tests.conftest import route_for

    route = route_for(upstream_fake)

    denied = probe(route, timeout=2, policy=UrlPolicy.parse(["127.0.0.0/8"]))
    settings.ELDRIC_BACKEND_URL_DENY = ["127.0.0.1"]
    by_setting = probe(route, timeout=2)

    assert denied.status == by_setting.status == "unhealthy"
    assert "127.0.0.0/8" in denied.error and "127.0.0.1" in by_setting.error
    assert upstream_fake.received == []


def test_a_resolved_name_is_checked_by_the_probe(upstream_fake):
    from backends.probe import probe
    from tests.conftest import route_for

    route = dataclasses.replace(route_for(upstream_fake), url="http://rebind.example/v1")
    fake = resolver({"rebind.example": ["169.254.169.254"]})

    result = probe(route, timeout=2, resolver=fake)

    assert result.status == "unhealthy"
    assert "169.254.0.0/16" in result.error
    assert fake.asked == ["rebind.example"]
    assert upstream_fake.received == []


@pytest.mark.django_db(transaction=True)
def test_the_admin_form_refuses_a_denied_url(admin_client):
    form = {"name": "meta", "kind": "openai_compatible", "url": DENIED, "priority": "5", "headers": "{}"}

    response = admin_client.post("/admin/backends/backend/add/", form)

    assert response.status_code == 200  # the form again, with the error
    assert "169.254.0.0/16" in response.content.decode()
    assert not Backend.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_admin_test_action_reports_a_denied_url(admin_client, settings, upstream_fake):
    backend = Backend(name="b1", url=upstream_fake.url + "/v1")
    backend.save()
    settings.ELDRIC_BACKEND_URL_DENY = ["127.0.0.1"]

    response = admin_client.post(
        "/admin/backends/backend/",
        {"action": "test_connectivity", "_selected_action": [backend.pk]},
        follow=True,
    )

    shown = " ".join(str(m) for m in response.context["messages"])
    assert "b1: not tested, url not allowed" in shown, shown
    assert "127.0.0.1" in shown
    assert upstream_fake.received == []


def options(*specs, **extra):
    return SimpleNamespace(
        backends=list(specs), default_backend="", health_interval_ms=60000, controller_url="", **extra
    )


@pytest.mark.django_db(transaction=True)
def test_a_denied_static_backend_stops_start_up_naming_the_setting(settings):
    from eldric_cloud.bootstrap import prepare

    settings.ELDRIC_ADMIN_TOKEN = "eldadm_x"
    with pytest.raises(ConfigError, match="ELDRIC_BACKEND_URL_DENY") as info:
        prepare(options(BackendSpec(name="meta", url="http://169.254.169.254/v1")))

    assert "meta" in str(info.value) and "169.254.0.0/16" in str(info.value)
    assert not Backend.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_malformed_deny_list_stops_start_up(settings):
    from eldric_cloud.bootstrap import prepare

    settings.ELDRIC_ADMIN_TOKEN = "eldadm_x"
    settings.ELDRIC_BACKEND_URL_DENY = ["10.0.0.0/99"]

    with pytest.raises(ConfigError, match=re.escape("ELDRIC_BACKEND_URL_DENY: '10.0.0.0/99'")):
        prepare(options())


@pytest.fixture
def upstream_fake(fake_provider):
    return fake_provider("up").on("GET", "/v1/models", openai_models("model-a"))


def test_the_probe_connects_to_the_address_it_checked(upstream_fake):
    # The name is resolved once, by the policy; the connection goes to that address, so the
    # name cannot be re-pointed in between. The Host header still carries the name.
    from backends.probe import probe
    from tests.conftest import route_for

    route = dataclasses.replace(route_for(upstream_fake), url=f"http://llm.example:{upstream_fake.port}/v1")
    fake = resolver({"llm.example": ["127.0.0.1"]})

    result = probe(route, timeout=2, resolver=fake)

    assert result.status == "healthy", result.error
    assert [m.id for m in result.models] == ["model-a"]
    assert set(fake.asked) == {"llm.example"}
    assert upstream_fake.received[0].headers["Host"] == f"llm.example:{upstream_fake.port}"


def test_a_name_that_does_not_resolve_cannot_connect(upstream_fake):
    from backends.probe import probe
    from tests.conftest import route_for

    route = dataclasses.replace(route_for(upstream_fake), url="http://nowhere.example/v1")

    result = probe(route, timeout=2, resolver=resolver({}))

    assert result.status == "unhealthy" and result.error.startswith("cannot connect")
