"""Backends that answer strangely, slowly or hugely: the probe reports them, nothing dies.

Each upstream is a real HTTP server on 127.0.0.1 (tests.fakes); the drips are bounded and
every test ends in a few seconds because ELDRIC_HEALTH_TIMEOUT is short.
"""

import asyncio
import json
import logging
import time
from types import SimpleNamespace

import pytest
from aiohttp import web

from backends.models import Backend, DiscoveredModel
from backends.probe import ProbeLimits, probe
from backends.specs import BackendSpec
from tests.api.conftest import RAW_KEY, backend_body
from tests.conftest import route_for
from tests.fakes.server import openai_models, reply_bytes, reply_json

ODD = {
    "422-odd-detail": reply_json({"detail": [{"loc": 5, "msg": 7}]}, status=422),
    "422-detail-not-a-list": reply_json({"detail": {"loc": [None], "msg": ["x"]}}, status=422),
    "400-error-is-a-number": reply_json({"error": 5}, status=400),
    "500-bare-list": reply_json([1, 2, 3], status=500),
    "200-garbage": reply_bytes(b"\x00\xff<html>not json"),
    "200-data-is-a-number": reply_json({"data": 5}),
    "200-a-string": reply_json("models"),
    "200-truncated": reply_bytes(b'{"object": "list", "data": [{"id": "a"'),
}


def drip(chunks: int = 40, interval: float = 0.25, *, headers_too: bool = False):
    """One byte every ``interval``; bounded, and stops when the client goes away."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        if headers_too:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"[:chunks]:
                if request.transport is None or request.transport.is_closing():
                    break
                request.transport.write(bytes([byte]))
                await asyncio.sleep(interval)
            raise ConnectionResetError("drip ended")
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for byte in (b'{"object":"list","data":[' + b" " * chunks)[:chunks]:
            try:
                await response.write(bytes([byte]))
            except ConnectionResetError:
                break
            await asyncio.sleep(interval)
        return response

    return behaviour


def models_body(count: int, *, id_length: int = 8) -> bytes:
    data = [{"id": f"m{i:0{id_length - 1}d}", "object": "model", "created": 1} for i in range(count)]
    return json.dumps({"object": "list", "data": data}).encode()


# --- odd answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ODD.values(), ids=ODD.keys())
def test_an_odd_answer_is_an_unhealthy_result_with_a_readable_error(fake_provider, answer):
    fake = fake_provider("odd").on("GET", "/v1/models", answer)

    result = probe(route_for(fake), timeout=5)

    assert result.status in ("unhealthy", "auth_failed")
    assert result.reachable
    assert result.error and len(result.error) <= 1000
    assert RAW_KEY not in result.error and "sk-test-key-0001" not in result.error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer", ODD.values(), ids=ODD.keys())
def test_testing_a_saved_backend_that_answers_oddly_is_a_200(api, fake_provider, answer):
    fake = fake_provider("odd").on("GET", "/v1/models", answer)
    assert api.post("/api/v1/backends", backend_body(fake, name="odd")).status_code == 201

    response = api.post("/api/v1/backends/odd/test")

    assert response.status_code == 200
    assert response.json()["status"] == "unhealthy"
    assert Backend.objects.get().health_status == "unhealthy"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer", ODD.values(), ids=ODD.keys())
def test_testing_a_config_that_answers_oddly_is_a_200(api, fake_provider, answer):
    fake = fake_provider("odd").on("GET", "/v1/models", answer)

    response = api.post("/api/v1/backends/test", {"type": "openai_compatible", "url": fake.url + "/v1"})

    assert response.status_code == 200
    assert response.json()["status"] == "unhealthy"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["ollama", "cohere", "anthropic"])
def test_every_adapter_survives_the_odd_answers(api, fake_provider, kind):
    fake = fake_provider("odd")
    for path in ("/v1/models", "/api/tags", "/v2/models", "/models", "/v1/models/"):
        fake.on("GET", path, ODD["422-odd-detail"])
    statuses = []
    for answer in ODD.values():
        for path in ("/v1/models", "/api/tags", "/v2/models", "/models"):
            fake.on("GET", path, answer)
        response = api.post("/api/v1/backends/test", {"type": kind, "url": fake.url})
        assert response.status_code == 200, response.content[:300]
        statuses.append(response.json()["status"])
    assert set(statuses) <= {"unhealthy", "auth_failed"}
    assert fake.received, "the adapter's model-list path is not one this test serves"


@pytest.fixture
def broken_adapter(monkeypatch):
    """An adapter with a gap: reading this model list raises what it should not."""
    from backends.providers import provider_for

    def set_error(exc: Exception) -> None:
        def parse_models(route, body):
            raise exc

        monkeypatch.setattr(provider_for("openai_compatible"), "parse_models", parse_models)

    return set_error


def test_an_adapter_failure_is_logged_once_with_its_traceback(fake_provider, broken_adapter, caplog):
    broken_adapter(TypeError("'int' object is not iterable"))
    fake = fake_provider("odd").on("GET", "/v1/models", openai_models("a"))

    with caplog.at_level(logging.ERROR, logger="backends.probe"):
        result = probe(route_for(fake), timeout=5)

    assert result.status == "unhealthy" and result.http_status == 200
    assert result.error == "the model list: the answer could not be read (TypeError); see the server log"
    records = [r for r in caplog.records if r.name == "backends.probe"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "not iterable" in records[0].getMessage()


def test_an_adapter_failure_that_quotes_the_key_is_logged_redacted_without_traceback(
    fake_provider, broken_adapter, caplog
):
    broken_adapter(KeyError("sk-test-key-0001"))
    fake = fake_provider("odd").on("GET", "/v1/models", openai_models("a"))

    with caplog.at_level(logging.ERROR, logger="backends.probe"):
        result = probe(route_for(fake), timeout=5)

    assert result.status == "unhealthy"
    (record,) = [r for r in caplog.records if r.name == "backends.probe"]
    assert record.exc_info is None or record.exc_info is False
    assert "sk-test-key-0001" not in record.getMessage() and "[redacted]" in record.getMessage()


@pytest.mark.django_db(transaction=True)
def test_an_adapter_failure_is_a_200_from_the_test_endpoint(api, fake_provider, broken_adapter):
    broken_adapter(RuntimeError("boom"))
    fake = fake_provider("odd").on("GET", "/v1/models", openai_models("a"))

    response = api.post("/api/v1/backends/test", {"type": "openai_compatible", "url": fake.url + "/v1"})

    assert response.status_code == 200
    assert response.json()["status"] == "unhealthy"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer", [*ODD.values(), drip()], ids=[*ODD.keys(), "drip"])
def test_start_up_goes_on_when_a_backend_answers_strangely(fake_provider, settings, answer):
    # One backend per start: the in-memory test database cannot take the start-up pool's
    # concurrent writes (a file database waits for its lock instead).
    from eldric_cloud.bootstrap import prepare

    settings.ELDRIC_ADMIN_TOKEN = "eldadm_x"
    settings.ELDRIC_HEALTH_TIMEOUT = 1.0
    fake = fake_provider("odd").on("GET", "/v1/models", answer)
    started = time.monotonic()

    state = prepare(
        SimpleNamespace(
            backends=[BackendSpec(name="odd", url=fake.url + "/v1")],
            default_backend="odd",
            health_interval_ms=60000,
            controller_url="",
        )
    )

    assert time.monotonic() - started < 5
    assert state.backends == ["odd"] and state.models == 0
    backend = Backend.objects.get()
    assert backend.health_status == "unhealthy" and backend.last_error


# --- deadlines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_dripping_model_list_ends_at_the_deadline(fake_provider, headers_too):
    fake = fake_provider("drip").on("GET", "/v1/models", drip(headers_too=headers_too))
    started = time.monotonic()

    result = probe(route_for(fake), timeout=1.0)

    elapsed = time.monotonic() - started
    assert result.status == "unhealthy"
    assert "timed out after 1s" in result.error
    assert elapsed < 1.6


def test_the_deadline_covers_every_page(fake_provider):
    # Each page answers within the timeout; together they do not.
    fake = fake_provider("pages")

    async def slow_page(request):
        await asyncio.sleep(0.4)
        after = int(request.query.get("after", "0")) + 1
        return web.json_response({"data": [{"id": f"m{after}"}], "has_more": True, "last_id": str(after)})

    fake.on("GET", "/v1/models", slow_page)
    started = time.monotonic()

    result = probe(route_for(fake, kind="anthropic"), timeout=1.0)

    assert time.monotonic() - started < 1.6
    assert result.status == "unhealthy" and "timed out" in result.error
    assert 2 <= len(fake.received) <= 3


@pytest.mark.django_db(transaction=True)
def test_testing_a_dripping_backend_answers_within_the_deadline(api, fake_provider, settings):
    settings.ELDRIC_HEALTH_TIMEOUT = 1.0
    fake = fake_provider("drip").on("GET", "/v1/models", drip())
    started = time.monotonic()

    response = api.post("/api/v1/backends/test", {"type": "openai_compatible", "url": fake.url + "/v1"})

    assert time.monotonic() - started < 1.8
    assert response.status_code == 200
    assert "timed out" in response.json()["error"]


# --- size caps ----------------------------------------------------------------------------------


def test_a_model_list_over_the_byte_cap_is_unhealthy(fake_provider):
    fake = fake_provider("huge").on("GET", "/v1/models", reply_bytes(models_body(20_000)))

    result = probe(route_for(fake), timeout=5, limits=ProbeLimits(body_bytes=100_000, models=10))

    assert result.status == "unhealthy"
    assert "larger than 100000 bytes (ELDRIC_MAX_MODELS_BODY_BYTES)" in result.error


def test_a_chunked_model_list_over_the_byte_cap_is_unhealthy(fake_provider):
    async def endless(request):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"data": [')
        for _ in range(200):  # 12.8 MB at most, far past the cap
            try:
                await response.write(b'{"id": "x"},' * 5000)
            except ConnectionResetError:
                break
        return response

    fake = fake_provider("endless").on("GET", "/v1/models", endless)

    result = probe(route_for(fake), timeout=5, limits=ProbeLimits(body_bytes=200_000, models=10))

    assert result.status == "unhealthy" and "larger than 200000 bytes" in result.error


def test_the_number_of_models_is_capped_and_the_backend_stays_healthy(fake_provider, caplog):
    fake = fake_provider("many").on("GET", "/v1/models", reply_bytes(models_body(5000)))

    with caplog.at_level(logging.WARNING, logger="backends.probe"):
        result = probe(route_for(fake), timeout=5, limits=ProbeLimits(body_bytes=10**7, models=100))

    assert result.status == "healthy"
    assert len(result.models) == 100
    assert "keeping the first 100 (ELDRIC_MAX_MODELS_PER_BACKEND)" in caplog.text


def test_the_settings_set_the_caps(fake_provider, settings):
    settings.ELDRIC_MAX_MODELS_PER_BACKEND = 3
    fake = fake_provider("many").on("GET", "/v1/models", reply_bytes(models_body(10)))

    assert len(probe(route_for(fake), timeout=5).models) == 3
    settings.ELDRIC_MAX_MODELS_BODY_BYTES = 100
    assert "larger than 100 bytes" in probe(route_for(fake), timeout=5).error


@pytest.mark.django_db(transaction=True)
def test_ids_that_do_not_fit_the_column_are_skipped_and_the_rest_stored(api, fake_provider, caplog):
    data = [{"id": "ok-1"}, {"id": "x" * 256}, {"id": "y" * 255}, {"id": "bad\ud800"}, {"id": "nul\x00"}, {"id": ""}]
    data.append({"id": "big-created", "created": 10**30})
    fake = fake_provider("ids").on("GET", "/v1/models", reply_json({"data": data}))

    with caplog.at_level(logging.WARNING, logger="backends.probe"):
        response = api.post("/api/v1/backends", backend_body(fake, name="ids"))

    assert response.status_code == 201
    stored = dict(DiscoveredModel.objects.values_list("model_id", "created"))
    assert set(stored) == {"ok-1", "y" * 255, "big-created"}
    # No usable upstream time (none, or one that does not fit): the time of discovery instead.
    assert all(abs(created - time.time()) < 600 for created in stored.values()), stored
    assert Backend.objects.get().health_status == "healthy"
    assert "model id(s) that are not strings of 1-255 characters" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_error_message_with_a_lone_surrogate_or_nul_is_stored(api, fake_provider):
    raw = b'{"error": {"message": "bad \\ud800 thing \\u0000 here"}}'
    fake = fake_provider("err").on("GET", "/v1/models", reply_bytes(raw, status=503))
    api.post("/api/v1/backends", backend_body(fake, name="err"))

    result = api.post("/api/v1/backends/err/test").json()

    assert result["status"] == "unhealthy"
    assert "bad" in result["error"] and "\x00" not in result["error"]
    assert Backend.objects.get().last_error == result["error"]


def test_a_probe_error_is_always_storable_and_bounded():
    from backends.probe import ProbeResult

    result = ProbeResult("unhealthy", error="bad \ud800 nul \x00 " + "x" * 5000)

    result.error.encode("utf-8")  # would raise on a lone surrogate
    assert "\x00" not in result.error
    assert result.error.startswith("bad \\ud800 nul ")
    assert len(result.error) == 1000


@pytest.mark.django_db(transaction=True)
def test_start_up_goes_on_when_an_adapter_raises(fake_provider, broken_adapter, settings):
    from eldric_cloud.bootstrap import prepare

    settings.ELDRIC_ADMIN_TOKEN = "eldadm_x"
    broken_adapter(IndexError("list index out of range"))
    fake = fake_provider("odd").on("GET", "/v1/models", openai_models("a"))
    spec = BackendSpec(name="odd", url=fake.url + "/v1")

    state = prepare(SimpleNamespace(backends=[spec], default_backend="", health_interval_ms=60000, controller_url=""))

    assert state.backends == ["odd"]
    assert Backend.objects.get().health_status == "unhealthy"
    assert "IndexError" in Backend.objects.get().last_error
