"""What every adapter promises the gateway: Retry-After read in all its forms, error bodies mapped
whatever they hold, ``refusal: null`` on translated messages, and usage (with cached and reasoning
tokens) reported by translated answers and streams, checked against recorded traffic."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backends.providers import provider_for
from backends.providers.base import (
    InvalidRequestError,
    OpenAIError,
    ProviderError,
    generic_error,
    retry_after_seconds,
)
from backends.providers.openai_compatible import _validation_message
from backends.snapshot import BackendRoute
from tests.fakes import recordings as rec
from tests.providers.streams import feed_in_slices

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
ROUTES = {
    "anthropic": BackendRoute(name="claude", kind="anthropic", url="http://anthropic.test/v1", api_key="k"),
    "cohere": BackendRoute(name="cohere", kind="cohere", url="http://cohere.test", api_key="k"),
    "ollama": BackendRoute(name="ollama", kind="ollama", url="http://ollama.test", api_key=""),
    "mistral": BackendRoute(name="mistral", kind="openai_compatible", url="https://api.mistral.ai/v1", api_key="k"),
}
PAYLOAD = {"model": "some-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "Tue, 01 Dec 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Tue, 01 Dec 2026 11:00:00 GMT"}, 0.0),  # a date in the past: retry now
        ({"retry-after": "Tue, 01 Dec 2026 12:01:00 -0000"}, 60.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "86400000"}, 86400000.0),  # large but finite: the gateway caps it
    ],
)
def test_retry_after_reads_seconds_dates_and_milliseconds(headers, seconds):
    assert retry_after_seconds(headers, now=NOW) == seconds


@pytest.mark.parametrize(
    "value", ["inf", "Infinity", "nan", "1e400", "9" * 400, "-5", "-0.5", "soon", "", "5 seconds", "0x10", "1_0"]
)
def test_retry_after_that_is_not_a_finite_delay_is_none(value):
    assert retry_after_seconds({"retry-after": value}, now=NOW) is None
    assert retry_after_seconds({"retry-after-ms": value}, now=NOW) is None


def test_retry_after_without_headers_is_none():
    assert retry_after_seconds(None) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"x-other": "1"}) is None


@pytest.mark.parametrize("kind", ["anthropic", "cohere", "ollama", "openai_compatible"])
def test_every_adapter_reports_an_http_date_retry_after_as_seconds(kind):
    later = datetime.now(UTC).timestamp() + 120
    date = datetime.fromtimestamp(later, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    error = provider_for(kind).error(429, b'{"error": {"message": "slow down"}}', {"retry-after": date})
    assert error.retry_after is not None and 100 < error.retry_after <= 120


@pytest.mark.parametrize("kind", ["anthropic", "cohere", "ollama", "openai_compatible"])
def test_every_adapter_drops_an_unreadable_retry_after(kind):
    error = provider_for(kind).error(429, b"busy", {"retry-after": "1e400"})
    assert (error.status, error.retry_after) == (429, None)


# --- error mapping --------------------------------------------------------------------------------


def test_mistral_422_with_an_unreadable_loc_still_maps():
    body = json.dumps({"detail": [{"loc": 5, "msg": "Extra inputs are not permitted"}, 7, {"loc": None}]}).encode()
    error = provider_for("openai_compatible").error(422, body)
    assert (error.status, error.message) == (422, "Extra inputs are not permitted; invalid")


def test_validation_message_accepts_any_json():
    assert _validation_message({"detail": [{"loc": ["body", "stream_options"], "msg": "extra"}]}) == (
        "stream_options: extra"
    )
    assert _validation_message({"detail": [{"loc": {"a": 1}, "msg": 5, "type": "missing"}]}) == "missing"
    for value in (None, 5, "x", [], {}, {"detail": "text"}, [[1]], [{"loc": [[], {}], "msg": None}]):
        _validation_message(value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": {"message": 5, "type": ["x"], "param": 3, "code": true}}',
        b'{"error": {"message": "\\ud800 broke", "param": "messages", "code": 429}}',
        b'{"message": {"nested": true}, "code": [1]}',
        b'{"detail": [{"loc": 5}]}',
        b'{"error": 5}',
        b"[1, 2]",
        b'"just a string"',
        b"\xff\xfe not utf-8",
        b"",
    ],
)
@pytest.mark.parametrize("kind", ["anthropic", "cohere", "ollama", "openai_compatible"])
def test_error_fields_are_always_strings_whatever_the_body(kind, body):
    error = provider_for(kind).error(400, body, {"retry-after": "x"})
    assert isinstance(error.message, str) and error.message
    assert isinstance(error.type, str)
    assert error.param is None or isinstance(error.param, str)
    assert error.code is None or (isinstance(error.code, (str, int)) and not isinstance(error.code, bool))
    json.loads(error.body())
    error.message.encode("utf-8")  # lone surrogates were replaced


def test_generic_error_keeps_what_it_can_read():
    error = generic_error(404, b'{"error": {"message": "no such model", "param": "model", "code": "model_not_found"}}')
    assert (error.status, error.message, error.param, error.code) == (404, "no such model", "model", "model_not_found")


def test_invalid_request_error_is_a_provider_error_that_names_the_param():
    error = InvalidRequestError("'tools' must be an array, got an integer", "tools")
    assert isinstance(error, ProviderError) and error.param == "tools" and "tools" in str(error)


def test_openai_error_normalizes_what_it_is_given():
    error = OpenAIError(400, "caf\ud800", type=None, param=5, code=True, retry_after=float("nan"))
    assert (error.message, error.type, error.param, error.code, error.retry_after) == (
        "caf\ufffd",
        "",
        None,
        None,
        None,
    )


def test_a_cohere_wrong_typed_field_is_a_400_not_a_crash():
    # The case that used to reach the client as a plain-text 500.
    with pytest.raises(InvalidRequestError) as raised:
        provider_for("cohere").chat_request(ROUTES["cohere"], {**PAYLOAD, "tools": 1}, b"")
    assert raised.value.param == "tools"


# --- refusal: null ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("anthropic", rec.response("anthropic", "messages_text")),
        ("anthropic", rec.response("anthropic", "messages_parallel_tool_use", 1)),
        ("cohere", rec.response("cohere", "v2_chat_tool_call", 1)),
        ("cohere", rec.response("cohere", "v2_chat_simple_pydantic")),
        ("ollama", rec.response("ollama", "native_chat_format_json")),
    ],
)
def test_translated_messages_carry_refusal_null(kind, body):
    message = json.loads(provider_for(kind).chat_response(PAYLOAD, body))["choices"][0]["message"]
    assert "refusal" in message and message["refusal"] is None


# --- usage -----------------------------------------------------------------------------------------


def stream_usage(key: str, body: bytes, payload: dict = PAYLOAD):
    translator = provider_for(ROUTES[key].kind).stream_translator(ROUTES[key], payload)
    assert translator.usage is None  # nothing reported yet
    frames = feed_in_slices(translator, body, seed=3, max_slice=40)
    return translator.usage, frames


def test_anthropic_stream_usage_is_known_from_message_start_and_final_after_message_delta():
    body = rec.response("anthropic", "messages_stream_parallel_tool_use", 1)
    translator = provider_for("anthropic").stream_translator(ROUTES["anthropic"], PAYLOAD)
    first_event = body[: body.index(b"\n\n") + 2]
    translator.feed(first_event)
    assert translator.usage["prompt_tokens"] == 416
    translator.feed(body[len(first_event) :])
    translator.close()
    assert translator.usage == {
        "prompt_tokens": 416,
        "completion_tokens": 109,
        "total_tokens": 525,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_cohere_stream_usage_counts_tokens_and_cached_tokens_without_include_usage():
    usage, frames = stream_usage("cohere", rec.response("cohere", "v2_chat_stream_text"))
    assert usage == {
        "prompt_tokens": 502,
        "completion_tokens": 24,
        "total_tokens": 526,
        "prompt_tokens_details": {"cached_tokens": 448},
    }
    assert not any(b'"usage":{' in frame for frame in frames)  # the client did not ask for a usage chunk


def test_ollama_stream_usage_comes_from_the_eval_counts():
    usage, _ = stream_usage("ollama", rec.response("ollama", "native_chat_stream"))
    assert usage == {"prompt_tokens": 16, "completion_tokens": 22, "total_tokens": 38}


def test_mistral_stream_usage_comes_from_its_last_chunk():
    usage, _ = stream_usage("mistral", rec.chunks_as_sse("mistral", "chat_stream_tool_call_chunks_only"))
    assert usage == {"prompt_tokens": 124, "completion_tokens": 22, "total_tokens": 146}


def test_stream_usage_chunk_matches_the_usage_attribute():
    payload = {**PAYLOAD, "stream_options": {"include_usage": True}}
    usage, frames = stream_usage("cohere", rec.response("cohere", "v2_chat_stream_text"), payload)
    chunk = json.loads(frames[-2].removeprefix(b"data: "))
    assert chunk["choices"] == [] and chunk["usage"] == usage


def test_cohere_answer_maps_cached_tokens():
    answer = json.loads(provider_for("cohere").chat_response(PAYLOAD, rec.response("cohere", "v2_chat_tool_call", 1)))
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": 704}
    assert answer["usage"]["prompt_tokens"] == 1508  # usage.tokens, not billed_units


def test_cohere_answer_falls_back_to_billed_units():
    data = json.loads(rec.response("cohere", "v2_chat_tool_call", 1))
    data["usage"] = {"billed_units": {"input_tokens": 98, "output_tokens": 35}}
    answer = json.loads(provider_for("cohere").chat_response(PAYLOAD, json.dumps(data).encode()))
    assert answer["usage"] == {"prompt_tokens": 98, "completion_tokens": 35, "total_tokens": 133}


def test_anthropic_answer_maps_cache_reads_and_thinking_tokens():
    data = json.loads(rec.response("anthropic", "messages_thinking", 1))
    data["usage"] = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 300,
        "output_tokens": 150,
        "output_tokens_details": {"thinking_tokens": 120},
    }
    answer = json.loads(provider_for("anthropic").chat_response(PAYLOAD, json.dumps(data).encode()))
    assert answer["usage"] == {
        "prompt_tokens": 330,
        "completion_tokens": 150,
        "total_tokens": 480,
        "prompt_tokens_details": {"cached_tokens": 300},
        "completion_tokens_details": {"reasoning_tokens": 120},
    }


def test_usage_ignores_counts_that_are_not_counts():
    data = json.loads(rec.response("cohere", "v2_chat_tool_call", 1))
    data["usage"] = {"tokens": {"input_tokens": "12", "output_tokens": -4}, "cached_tokens": True}
    answer = json.loads(provider_for("cohere").chat_response(PAYLOAD, json.dumps(data).encode()))
    assert answer["usage"]["total_tokens"] == 0
