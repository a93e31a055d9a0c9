"""Hostile JSON bodies on /api/v1/*: depth, lone surrogates, size, bad UTF-8. Each is a 400/413
in OpenAI's shape, never Django's 500 page, and nothing reaches the database."""

import json

import pytest

from backends.api_parsers import lone_surrogate_path, nesting_exceeds
from backends.models import Backend
from tests.hardening_api.conftest import assert_openai_error

pytestmark = pytest.mark.django_db(transaction=True)

WRITES = ["/api/v1/backends", "/api/v1/backends/test"]


def body(url="http://127.0.0.1:9/v1", **fields) -> dict:
    return {"name": "b1", "type": "openai_compatible", "url": url, **fields}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITES)
def test_100k_open_brackets_are_a_400_not_a_recursion_error(raw_post, path):
    response = raw_post(path, b"[" * 100_000)

    error = assert_openai_error(response, 400)
    assert "nested deeper than 64" in error["message"]


@pytest.mark.parametrize("path", WRITES)
def test_a_balanced_deep_document_is_a_400(raw_post, path):
    response = raw_post(path, b'{"name":' + nested(100_000) + b"}")

    assert "nested deeper than 64" in assert_openai_error(response, 400)["message"]


def test_unbalanced_brackets_deep_inside_are_a_400(raw_post):
    response = raw_post("/api/v1/backends", b"[" * 100_000 + b"}")

    assert_openai_error(response, 400)


def test_the_depth_limit_is_a_setting(raw_post, settings):
    at_limit = json.dumps({**body(), "headers": {"x": "y"}}).encode()  # depth 2
    settings.ELDRIC_MAX_JSON_DEPTH = 1

    response = raw_post("/api/v1/backends", at_limit)

    assert "nested deeper than 1" in assert_openai_error(response, 400)["message"]
    settings.ELDRIC_MAX_JSON_DEPTH = 2
    assert raw_post("/api/v1/backends", at_limit).status_code == 201


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 1000, "b": ['"]]]' * 100, "\\[[["]}).encode()

    assert not nesting_exceeds(text, 3)
    assert nesting_exceeds(json.dumps([[[["x"]]]]).encode(), 3)
    assert not nesting_exceeds(json.dumps([[["x"]], [["y"]]]).encode(), 3)
    assert nesting_exceeds(b'[{"a":[{"b":[]}]}]', 4)
    assert not nesting_exceeds(b'[{"a":[{"b":[]}]}]', 5)


# --- lone surrogates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, param",
    [
        pytest.param(b'{"name": "b\\ud800", "type": "openai_compatible", "url": "http://h/v1"}', "name", id="name"),
        pytest.param(b'{"name": "b1", "type": "\\udfff", "url": "http://h/v1"}', "type", id="type"),
        pytest.param(b'{"name": "b1", "type": "openai_compatible", "url": "http://h/\\ud800"}', "url", id="url"),
        pytest.param(
            b'{"name": "b1", "type": "openai_compatible", "url": "http://h/v1", "api_key": "sk-\\ud83d"}',
            "api_key",
            id="api_key",
        ),
        pytest.param(
            b'{"name": "b1", "type": "openai_compatible", "url": "http://h/v1", "headers": {"X-T": "\\ud800"}}',
            "headers.X-T",
            id="header-value",
        ),
        pytest.param(
            b'{"name": "b1", "type": "openai_compatible", "url": "http://h/v1", "headers": {"\\ud800": "v"}}',
            "headers.\\ud800",
            id="header-name",
        ),
        pytest.param(b'{"\\udc00": 1}', "\\udc00", id="unknown-key"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(raw_post, raw, param):
    response = raw_post("/api/v1/backends", raw)

    error = assert_openai_error(response, 400, param=param)
    assert "lone UTF-16 surrogate" in error["message"]
    assert not Backend.objects.exists()


def test_a_lone_surrogate_in_a_patch_or_a_config_test_is_a_400(api, raw_post):
    api.post("/api/v1/backends", body(enabled=False))

    patched = api.client.patch(
        "/api/v1/backends/b1", data=b'{"headers": {"X-T": "\\ud800"}}', content_type="application/json"
    )
    tested = raw_post("/api/v1/backends/test", b'{"type": "ollama", "url": "http://h", "api_key": "\\udbff"}')

    assert_openai_error(patched, 400, param="headers.X-T")
    assert_openai_error(tested, 400, param="api_key")
    assert Backend.objects.get().headers == {}


def test_a_proper_surrogate_pair_is_an_ordinary_character(raw_post):
    # "\ud83d\ude00" is one emoji: not a lone surrogate; the serializer's ASCII rule answers.
    response = raw_post(
        "/api/v1/backends", b'{"name": "b1", "type": "openai_compatible", "url": "http://h/\\ud83d\\ude00"}'
    )

    error = assert_openai_error(response, 400, param="url")
    assert "surrogate" not in error["message"]


def test_the_surrogate_finder_names_the_path():
    assert lone_surrogate_path({"a": [1, {"b": "ok"}, {"c": "\ud800"}]}) == ("a", "2", "c")
    assert lone_surrogate_path({"a": "\U0001f600"}) is None


# --- size and encoding ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_in_openai_shape(raw_post, settings):
    settings.ELDRIC_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    big = json.dumps(body(api_key="k" * 3000)).encode()

    response = raw_post("/api/v1/backends", big)

    error = assert_openai_error(response, 413)
    assert error["type"] == "request_too_large"
    assert "2000 bytes" in error["message"]
    assert not Backend.objects.exists()


def test_the_admin_refuses_a_form_over_the_limit(admin_client, settings):
    settings.ELDRIC_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    form = {"name": "b1", "kind": "openai_compatible", "url": "http://127.0.0.1:9/v1", "priority": "5"}

    response = admin_client.post("/admin/backends/backend/add/", {**form, "headers": "{}", "api_key": "k" * 3000})

    assert response.status_code in (400, 413)
    assert not Backend.objects.exists()


def test_the_body_limit_follows_the_eldric_setting():
    from django.conf import settings

    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.ELDRIC_MAX_BODY_BYTES


def test_bad_utf8_is_a_400(raw_post):
    response = raw_post("/api/v1/backends", b'{"name": "b\xff\xfe1"}')

    assert "UTF-8" in assert_openai_error(response, 400)["message"]


@pytest.mark.parametrize("raw", [b"NaN", b'{"priority": Infinity}', b"{", b"\xef\xbb\xbf{}", b"1" * 5000])
def test_other_malformed_json_is_a_400(raw_post, raw):
    assert_openai_error(raw_post("/api/v1/backends", raw), 400)
