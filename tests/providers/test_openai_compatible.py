"""OpenAI-compatible passthrough and per-provider quirks, against fakes replaying recorded traffic.

Every test here runs the real gateway (uvicorn, in-process) in front of a real HTTP fake and
talks to it with the official ``openai`` SDK or plain httpx; none uses the database.
"""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest
from aiohttp import web

from backends.probe import probe
from backends.providers.base import SSE_DONE
from backends.providers.openai_compatible import (
    OpenAICompatibleProvider,
    flavour_for,
    mistral_body,
    mistral_tool_call_id,
)
from tests.conftest import route_for
from tests.fakes import recordings as rec
from tests.fakes.server import FakeProvider, reply_bytes, reply_stream

CHAT = "/v1/chat/completions"
MISTRAL_ID = re.compile(r"[a-zA-Z0-9]{9}")
ADAPTER = OpenAICompatibleProvider()


def sdk(gateway, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-secret-key", max_retries=0, **kwargs)


def recorded_request(provider: str, name: str, index: int = 0) -> dict:
    return rec.interactions(provider, name)[index]["request"]["body"]


def serve(gateway, fake: FakeProvider, *models: str, **route_kwargs) -> None:
    gateway.route((route_for(fake, **route_kwargs), list(models)))


def stream_reply(provider: str, name: str, index: int | None = None):
    return reply_stream(rec.sse_frames(rec.response(provider, name, index)))


def raw_post(gateway, payload: dict | bytes, **headers) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with gateway.client() as client:
        return client.post(CHAT, content=content, headers={"content-type": "application/json", **headers})


def collect_tool_calls(chunks) -> dict[int, dict]:
    """Accumulate streamed tool-call deltas as an OpenAI client does: keyed by index."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] = delta.function.name or call["name"]
                    call["arguments"] += delta.function.arguments or ""
    return calls


# --- OpenAI: passthrough -------------------------------------------------------------------------


def test_openai_text_through_the_sdk_is_relayed_byte_for_byte(gateway, fake_provider):
    fake = fake_provider("openai").on("POST", CHAT, reply_bytes(rec.response("openai", "chat_text")))
    serve(gateway, fake, "gpt-4o")

    completion = sdk(gateway).chat.completions.create(**recorded_request("openai", "chat_text"))
    raw = raw_post(gateway, recorded_request("openai", "chat_text"))

    assert completion.choices[0].message.content == "\\(4200 + 42 = 4242\\)."
    assert completion.usage.total_tokens == 28
    assert raw.content == rec.response("openai", "chat_text")
    assert raw.headers["x-eldric-backend"] == "openai"


def test_openai_stream_text(gateway, fake_provider):
    recorded = rec.response("openai", "chat_stream_text")
    fake = fake_provider("openai").on("POST", CHAT, reply_stream(rec.sse_frames(recorded)))
    serve(gateway, fake, "gpt-4o")

    chunks = list(sdk(gateway).chat.completions.create(**recorded_request("openai", "chat_stream_text")))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "4242" in text
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    with gateway.client() as client:
        relayed = client.post(CHAT, json=recorded_request("openai", "chat_stream_text")).content
    assert relayed == recorded


def test_openai_streamed_parallel_tool_calls_arrive_in_fragments(gateway, fake_provider):
    recorded = rec.response("openai", "chat_stream_parallel_tool_calls", 1)
    fake = fake_provider("openai").on("POST", CHAT, reply_stream(rec.sse_frames(recorded)))
    serve(gateway, fake, "gpt-4o")
    request = recorded_request("openai", "chat_stream_parallel_tool_calls")

    chunks = list(sdk(gateway).chat.completions.create(**request))

    calls = collect_tool_calls(chunks)
    assert [calls[i]["id"] for i in sorted(calls)] == ["call_M26z19sncd7b4LBgzKRRbaUE", "call_KPXe5NX7IcKkaBUhc6dto2QV"]
    assert [json.loads(calls[i]["arguments"]) for i in sorted(calls)] == [
        {"password": "mellon"},
        {"password": "radiance"},
    ]
    fragments = sum(len(c.choices[0].delta.tool_calls or ()) for c in chunks if c.choices)
    assert fragments > 4  # the arguments really did arrive in pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage.prompt_tokens == 75


def test_openai_tool_result_turn_reaches_the_backend_unchanged(gateway, fake_provider):
    fake = fake_provider("openai").on("POST", CHAT, stream_reply("openai", "chat_stream_parallel_tool_calls", 2))
    serve(gateway, fake, "gpt-4o")
    request = recorded_request("openai", "chat_stream_parallel_tool_calls", 1)

    chunks = list(sdk(gateway).chat.completions.create(**request))

    assert fake.received[0].json() == request
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_plain_backend_gets_the_client_body_byte_for_byte_with_the_backend_key(gateway, fake_provider):
    fake = fake_provider("openai").on("POST", CHAT, reply_bytes(rec.response("openai", "chat_text")))
    serve(gateway, fake, "gpt-4o", key="sk-backend-key-0001", name="openai")
    # Odd spacing, key order, unicode escapes and fields no provider knows must all survive.
    body = (
        b'{ "model":"gpt-4o",  "messages":[{"role":"user","content":"caf\\u00e9 \xe2\x98\x95"}],'
        b'"x_vendor_field":{"keep":[1,2.50,null]},"response_format":{"type":"json_schema","json_schema":'
        b'{"name":"answer","schema":{"type":"object"},"strict":true}},"tools":[{"type":"function","function":'
        b'{"name":"f","parameters":{"type":"object","properties":{}}}}],"stream_options":{"include_usage":true},'
        b'"max_completion_tokens":12,"seed":7}\n'
    )

    answer = raw_post(gateway, body, authorization="Bearer client-secret-key", **{"openai-organization": "org-x"})

    assert answer.status_code == 200
    received = fake.received[0]
    assert received.body == body
    assert received.headers["Authorization"] == "Bearer sk-backend-key-0001"
    assert not any("client-secret-key" in value for value in received.headers.values())


def test_sdk_extra_fields_reach_a_plain_backend(gateway, fake_provider):
    fake = fake_provider("openai").on("POST", CHAT, reply_bytes(rec.response("openai", "chat_text")))
    serve(gateway, fake, "gpt-4o")

    sdk(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_object"},
        extra_body={"x_unknown": {"a": 1}},
    )

    sent = fake.received[0]
    assert sent.json()["x_unknown"] == {"a": 1}
    assert sent.json()["response_format"] == {"type": "json_object"}
    assert sent.headers["Authorization"] == "Bearer sk-test-key-0001"


# --- errors --------------------------------------------------------------------------------------

ERROR_CASES = [
    ("openai", "error_401_invalid_api_key", None, 401, openai.AuthenticationError, "invalid_api_key"),
    ("openai", "error_404_model_not_found", 1, 404, openai.NotFoundError, "model_not_found"),
    ("openai", "error_400_o1_mini_system_role", None, 400, openai.BadRequestError, "unsupported_value"),
    ("deepseek", "error_401", None, 401, openai.AuthenticationError, "invalid_request_error"),
    ("deepseek", "error_400_context_length", None, 400, openai.BadRequestError, "invalid_request_error"),
    ("groq", "error_404_model", None, 404, openai.NotFoundError, "model_not_found"),
    ("groq", "error_400_tool_use_failed", 1, 400, openai.BadRequestError, "tool_use_failed"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: f"{case[0]}-{case[1]}")
def test_upstream_errors_keep_status_and_message(gateway, fake_provider, case):
    provider, name, index, status, exception, code = case
    recorded = rec.response(provider, name, index)
    fake = fake_provider(provider).on("POST", CHAT, reply_bytes(recorded, status=status))
    serve(gateway, fake, "m")
    expected = json.loads(recorded)["error"]

    with pytest.raises(exception) as caught:
        sdk(gateway).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == status
    assert caught.value.body["message"] == expected["message"]
    assert caught.value.code == code
    assert caught.value.body.get("param") == expected.get("param")


def test_error_for_a_stream_request_is_plain_json_with_the_status(gateway, fake_provider):
    recorded = rec.response("openai", "error_404_model_not_found", 2)
    fake = fake_provider("openai").on("POST", CHAT, reply_bytes(recorded, status=404))
    serve(gateway, fake, "m")

    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gateway).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)

    assert "does not exist" in caught.value.message


# --- xAI -----------------------------------------------------------------------------------------


def test_xai_bad_key_400_reaches_the_client_as_401(gateway, fake_provider):
    recorded = rec.response("xai", "error_400_bad_api_key_responses_api")
    fake = fake_provider("xai").on("POST", CHAT, reply_bytes(recorded, status=400))
    serve(gateway, fake, "grok-3-mini")

    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(gateway).chat.completions.create(model="grok-3-mini", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == 401
    assert caught.value.body["message"].startswith("Incorrect API key provided.")
    assert caught.value.body["type"] == "authentication_error"


def test_xai_bad_key_marks_the_backend_auth_failed_on_probe(fake_provider):
    recorded = rec.response("xai", "error_400_bad_api_key_responses_api")
    fake = fake_provider("xai").on("GET", "/v1/models", reply_bytes(recorded, status=400))

    result = probe(route_for(fake), timeout=5)

    assert result.status == "auth_failed"
    assert "Incorrect API key" in result.error


def test_xai_other_400s_stay_400():
    mapped = ADAPTER.error(400, b'{"code":"invalid-argument","error":"messages: must not be empty"}')
    assert mapped.status == 400


def test_xai_reasoning_content_passes_through(gateway, fake_provider):
    recorded = json.dumps(rec.json_body("xai", "chat_text")).encode()
    stream = rec.chunks_as_sse("xai", "chat_stream_text_chunks_only")
    fake = fake_provider("xai").on("POST", CHAT, reply_bytes(recorded))
    serve(gateway, fake, "grok-3-mini")
    client = sdk(gateway)

    message = client.chat.completions.create(model="grok-3-mini", messages=[{"role": "user", "content": "hi"}])
    fake.on("POST", CHAT, reply_stream(rec.sse_frames(stream)))
    chunks = list(
        client.chat.completions.create(model="grok-3-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    )

    assert message.choices[0].message.content == "Hello"
    assert message.choices[0].message.reasoning_content.startswith("First, the user said")
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning.startswith("First, the user said")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_xai_whole_tool_call_in_one_response(gateway, fake_provider):
    recorded = json.dumps(rec.json_body("xai", "chat_tool_call")).encode()
    fake = fake_provider("xai").on("POST", CHAT, reply_bytes(recorded))
    serve(gateway, fake, "grok-3-mini")

    completion = sdk(gateway).chat.completions.create(model="grok-3-mini", messages=[{"role": "user", "content": "?"}])

    call = completion.choices[0].message.tool_calls[0]
    assert call.id == "call_93562515" and call.function.name == "weather"
    # xAI's total includes reasoning tokens: relayed as sent, not recomputed.
    usage = completion.usage
    assert usage.total_tokens != usage.prompt_tokens + usage.completion_tokens


# --- DeepSeek ------------------------------------------------------------------------------------


def test_deepseek_reasoner_stream_keeps_reasoning_content(gateway, fake_provider):
    recorded = rec.response("deepseek", "reasoner_stream")
    fake = fake_provider("deepseek").on("POST", CHAT, reply_stream(rec.sse_frames(recorded)))
    serve(gateway, fake, "deepseek-reasoner")
    request = recorded_request("deepseek", "reasoner_stream")

    chunks = list(sdk(gateway).chat.completions.create(**request))
    with gateway.client() as client:
        relayed = client.post(CHAT, json=request).content

    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning.startswith("Hmm,") and content.endswith("today?")
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 198
    assert relayed == recorded
    assert fake.received[0].json() == request


def test_deepseek_reasoner_nonstream_and_history_pass_through(gateway, fake_provider):
    recorded = rec.response("deepseek", "reasoner_nonstream")
    fake = fake_provider("deepseek").on("POST", CHAT, reply_bytes(recorded))
    serve(gateway, fake, "deepseek-reasoner", name="deepseek")

    first = sdk(gateway).chat.completions.create(**recorded_request("deepseek", "reasoner_nonstream"))
    message = first.choices[0].message
    assert message.content and message.reasoning_content
    # Sending the reasoning back is accepted (ignored) by DeepSeek today: the bytes stay untouched.
    history = json.dumps(
        {
            "model": "deepseek-reasoner",
            "messages": [
                {"role": "user", "content": "How do I cross the street?"},
                {"role": "assistant", "content": message.content, "reasoning_content": message.reasoning_content},
                {"role": "user", "content": "And at night?"},
            ],
        }
    ).encode()
    raw_post(gateway, history)

    assert fake.received[-1].body == history


# --- Groq ----------------------------------------------------------------------------------------


def test_groq_stream_tool_call_with_x_groq_usage(gateway, fake_provider):
    stream = rec.chunks_as_sse("groq", "chat_stream_tool_call_chunks_only")
    fake = fake_provider("groq").on("POST", CHAT, reply_stream(rec.sse_frames(stream)))
    serve(gateway, fake, "llama-3.3-70b-versatile")

    chunks = list(
        sdk(gateway).chat.completions.create(
            model="llama-3.3-70b-versatile", messages=[{"role": "user", "content": "weather?"}], stream=True
        )
    )

    assert collect_tool_calls(chunks) == {0: {"id": "tk85n1k4m", "name": "weather", "arguments": "{}"}}
    assert chunks[-1].usage.total_tokens == 225


GROQ_MIDSTREAM_ERROR = [
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1771434738,"model":"openai/gpt-oss-120b",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}],'
    b'"x_groq":{"id":"req_01"}}\n\n',
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1771434738,"model":"openai/gpt-oss-120b",'
    b'"choices":[{"index":0,"delta":{"reasoning":"Call the tool.","channel":"analysis"},"logprobs":null,'
    b'"finish_reason":null}]}\n\n',
    b'event: error\ndata: {"error":{"message":"Tool call validation failed: parameters for tool get_something_by_name '
    b'did not match schema","type":"invalid_request_error","code":"tool_use_failed",'
    b'"failed_generation":"{\\"foo\\": \\"bar\\"}","status_code":400}}\n\n',
]


def test_groq_error_event_after_200_raises_in_the_sdk(gateway, fake_provider):
    fake = fake_provider("groq").on("POST", CHAT, reply_stream(GROQ_MIDSTREAM_ERROR))
    serve(gateway, fake, "openai/gpt-oss-120b")

    stream = sdk(gateway).chat.completions.create(
        model="openai/gpt-oss-120b", messages=[{"role": "user", "content": "call it"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)

    assert len(received) == 2  # the chunks before the error still reached the client
    assert caught.value.message.startswith("Tool call validation failed")
    assert caught.value.body["code"] == "tool_use_failed"


def test_groq_error_event_is_relayed_verbatim(gateway, fake_provider):
    fake = fake_provider("groq").on("POST", CHAT, reply_stream(GROQ_MIDSTREAM_ERROR))
    serve(gateway, fake, "openai/gpt-oss-120b")

    with gateway.client() as client:
        relayed = client.post(
            CHAT, json={"model": "openai/gpt-oss-120b", "messages": [{"role": "user", "content": "x"}], "stream": True}
        ).content

    upstream = b"".join(GROQ_MIDSTREAM_ERROR)
    # Upstream's own error event is the only one; the gateway adds just the missing [DONE].
    assert relayed == upstream + SSE_DONE


# --- Together ------------------------------------------------------------------------------------


def test_together_text_and_rate_limit_headers(gateway, fake_provider):
    interaction = rec.interactions("together", "chat_text_with_ratelimit_headers")[0]
    recorded = rec.response("together", "chat_text_with_ratelimit_headers")
    limits = {k: v for k, v in interaction["response"]["headers"].items() if k.startswith("x-ratelimit-")}
    fake = fake_provider("together").on(
        "POST", CHAT, reply_bytes(recorded, headers={**limits, "Retry-After": "2", "x-request-id": "oPgYtxM"})
    )
    serve(gateway, fake, "meta-llama/Llama-3.3-70B-Instruct-Turbo")

    answer = raw_post(gateway, interaction["request"]["body"])
    completion = sdk(gateway).chat.completions.create(**interaction["request"]["body"])

    assert answer.content == recorded
    assert answer.headers["x-ratelimit-remaining-tokens"] == "3000"
    assert answer.headers["x-upstream-request-id"] == "oPgYtxM"
    assert completion.choices[0].message.content.endswith("4242")


TOGETHER_MODELS = [
    {"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "object": "model", "created": 1733443200, "type": "chat"},
    {"id": "BAAI/bge-large-en-v1.5", "object": "model", "created": 0, "type": "embedding"},
    {"object": "model"},
]


def test_together_bare_array_model_list(fake_provider):
    fake = fake_provider("together").on("GET", "/v1/models", reply_bytes(json.dumps(TOGETHER_MODELS).encode()))

    result = probe(route_for(fake), timeout=5)

    assert result.status == "healthy"
    assert [m.id for m in result.models] == ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "BAAI/bge-large-en-v1.5"]
    assert result.models[0].created == 1733443200
    assert fake.received[0].headers["Authorization"] == "Bearer sk-test-key-0001"


@pytest.mark.parametrize(
    "body", [b'{"object":"list","data":[{"id":"a","created":1}]}', json.dumps([{"id": "a", "created": 1}]).encode()]
)
def test_parse_models_accepts_list_and_bare_array(fake_provider, body):
    page = ADAPTER.parse_models(route_for(fake_provider("x")), body)
    assert [(m.id, m.created) for m in page.models] == [("a", 1)]
    assert page.next_request is None


# --- Mistral -------------------------------------------------------------------------------------


def mistral_validating(fake: FakeProvider, answer):
    """A Mistral fake that refuses what real Mistral refuses (providers.md §5.6), else answers."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        body = json.loads(fake.received[-1].body)
        problems = [f"body.{key}" for key in ("stream_options", "max_completion_tokens", "seed") if key in body]
        for i, message in enumerate(body["messages"]):
            problems += [f"body.messages.{i}.{key}" for key in ("reasoning_content", "reasoning") if key in message]
        if problems:
            detail = [
                {"type": "extra_forbidden", "loc": p.split("."), "msg": "Extra inputs are not permitted"}
                for p in problems
            ]
            return web.json_response(
                {"object": "error", "message": {"detail": detail}, "type": "invalid_request_message_error",
                 "param": None, "code": None},
                status=422,
            )  # fmt: skip
        ids = [c["id"] for m in body["messages"] for c in m.get("tool_calls") or ()]
        ids += [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
        bad = [i for i in ids if not MISTRAL_ID.fullmatch(i)]
        if bad:
            return web.json_response(
                {"object": "error", "message": f"Tool call id was {bad[0]} but must be a-z, A-Z, 0-9, with a length "
                 "of 9.", "type": "invalid_request_error", "param": None, "code": "3280"},
                status=400,
            )  # fmt: skip
        return await answer(request)

    return behaviour


def weather_call(call_id: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": "{}"}}


CROSS_PROVIDER_HISTORY = [
    {"role": "user", "content": "What's the weather in Berlin and Paris?"},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Two cities, two calls.",
        "tool_calls": [
            weather_call("call_M26z19sncd7b4LBgzKRRbaUE"),  # OpenAI
            weather_call("toolu_01A09q90qw90lq917835lq9"),  # Anthropic
            weather_call("bAyGEuxg1"),  # Mistral
        ],
    },
    {"role": "tool", "tool_call_id": "call_M26z19sncd7b4LBgzKRRbaUE", "content": "15°C"},
    {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "17°C"},
    {"role": "tool", "tool_call_id": "bAyGEuxg1", "content": "16°C"},
]


def test_mistral_request_is_rewritten_to_what_mistral_accepts(gateway, fake_provider):
    fake = fake_provider("mistral")
    fake.on("POST", CHAT, mistral_validating(fake, stream_reply("mistral", "chat_stream_text")))
    serve(gateway, fake, "mistral-small-latest")

    chunks = list(
        sdk(gateway).chat.completions.create(
            model="mistral-small-latest",
            messages=CROSS_PROVIDER_HISTORY,
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=64,
            seed=42,
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "1, 2, 3"
    sent = fake.received[0].json()
    assert "stream_options" not in sent and sent["max_tokens"] == 64 and sent["random_seed"] == 42
    assistant, *tools = sent["messages"][1:]
    call_ids = [c["id"] for c in assistant["tool_calls"]]
    assert [t["tool_call_id"] for t in tools] == call_ids  # pairs survive the rewrite
    assert all(MISTRAL_ID.fullmatch(i) for i in call_ids) and len(set(call_ids)) == 3
    assert call_ids[2] == "bAyGEuxg1"  # Mistral's own ids are kept
    assert "reasoning_content" not in assistant


def test_mistral_rewrite_is_deterministic_across_turns(fake_provider):
    route = route_for(fake_provider("mistral"))
    payload = {"model": "m", "messages": CROSS_PROVIDER_HISTORY}
    first = ADAPTER.chat_request(route, payload, json.dumps(payload).encode()).content
    second = ADAPTER.chat_request(route, payload, json.dumps(payload).encode()).content
    assert first == second
    assert (
        mistral_tool_call_id("call_M26z19sncd7b4LBgzKRRbaUE") == json.loads(first)["messages"][1]["tool_calls"][0]["id"]
    )


def test_mistral_valid_request_is_not_reserialized(gateway, fake_provider):
    fake = fake_provider("mistral")
    fake.on("POST", CHAT, mistral_validating(fake, reply_bytes(rec.response("mistral", "chat_tool_call", 2))))
    serve(gateway, fake, "mistral-small-latest")
    body = json.dumps(recorded_request("mistral", "chat_tool_call", 1), indent=1).encode()

    answer = raw_post(gateway, body)

    assert answer.status_code == 200
    assert fake.received[0].body == body


def test_mistral_flavour_from_host_when_the_name_says_nothing():
    payload = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {}}
    assert flavour_for("eu-llm", "https://api.mistral.ai/v1") == "mistral"
    assert flavour_for("mistral-eu", "http://10.0.0.9:8000/v1") == "mistral"
    assert flavour_for("openai", "https://api.openai.com/v1") == "openai"
    assert flavour_for("mistralish", "http://127.0.0.1:1/v1") == "generic"
    assert mistral_body(payload, b"original") != b"original"
    assert mistral_body({"model": "m", "messages": []}, b"original") == b"original"


def test_mistral_stream_tool_call_and_usage(gateway, fake_provider):
    stream = rec.chunks_as_sse("mistral", "chat_stream_tool_call_chunks_only")
    fake = fake_provider("mistral").on("POST", CHAT, reply_stream(rec.sse_frames(stream)))
    serve(gateway, fake, "mistral-small-latest")

    chunks = list(
        sdk(gateway).chat.completions.create(
            model="mistral-small-latest", messages=[{"role": "user", "content": "weather?"}], stream=True
        )
    )

    call = chunks[1].choices[0].delta.tool_calls[0]
    assert call.id == "gSIMJiOkT" and call.function.name == "weather"
    assert chunks[1].choices[0].finish_reason == "tool_calls" and chunks[1].usage.total_tokens == 146


def test_mistral_errors_in_openai_shape(gateway, fake_provider):
    fake = fake_provider("mistral")
    fake.on("POST", CHAT, mistral_validating(fake, reply_bytes(rec.response("mistral", "error_401"), status=401)))
    serve(gateway, fake, "mistral-small-latest")
    client = sdk(gateway)

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="mistral-small-latest", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.body == {
        "message": "Invalid API Key",
        "type": "authentication_error",
        "param": None,
        "code": None,
    }


def test_mistral_422_and_400_bodies_are_readable():
    unprocessable = ADAPTER.error(
        422,
        json.dumps(
            {
                "object": "error",
                "message": {"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options"],
                                        "msg": "Extra inputs are not permitted", "input": {"include_usage": True}}]},
                "type": "invalid_request_message_error",
                "param": None,
                "code": None,
            }
        ).encode(),
    )  # fmt: skip
    bad_id = ADAPTER.error(
        400,
        b'{"object":"error","message":"Tool call id was call_1 but must be a-z, A-Z, 0-9, with a length of 9.",'
        b'"type":"invalid_request_error","param":null,"code":"3280"}',
    )
    fastapi = ADAPTER.error(422, b'{"detail":[{"loc":["body","messages",1,"reasoning_content"],"msg":"Extra inputs"}]}')

    assert (unprocessable.status, unprocessable.message) == (422, "stream_options: Extra inputs are not permitted")
    assert unprocessable.as_dict()["error"]["type"] == "invalid_request_message_error"
    assert (bad_id.status, bad_id.code) == (400, "3280") and bad_id.message.startswith("Tool call id was call_1")
    assert fastapi.message == "messages.1.reasoning_content: Extra inputs"


def test_mistral_stream_translator_numbers_tool_calls(fake_provider):
    stream = rec.chunks_as_sse("mistral", "chat_stream_tool_call_chunks_only")
    translator = ADAPTER.stream_translator(route_for(fake_provider("mistral")), {})
    plain = ADAPTER.stream_translator(route_for(fake_provider("openai")), {})

    # Fed in awkward pieces, as the network delivers it.
    frames = [f for i in range(0, len(stream), 7) for f in translator.feed(stream[i : i + 7])] + translator.close()

    chunks = [json.loads(f[6:]) for f in frames if f != SSE_DONE]
    call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert call == {
        "id": "gSIMJiOkT",
        "function": {"name": "weather", "arguments": '{"location": "San Francisco"}'},
        "index": 0,
        "type": "function",
    }
    assert frames[0] == rec.sse_frames(stream)[0]  # events without tool calls are not touched
    assert frames[-1] == SSE_DONE and len(frames) == 3
    assert plain is None


def test_mistral_stream_translator_follows_fragments_and_reports_early_end():
    translator = ADAPTER.stream_translator(route_for(FakeProvider("mistral")), {})
    deltas = [
        {"id": "aaaaaaaa1", "function": {"name": "f", "arguments": ""}},
        {"function": {"arguments": '{"a":'}},
        {"function": {"arguments": "1}"}},
        {"id": "bbbbbbbb2", "function": {"name": "g", "arguments": "{}"}},
    ]
    body = b"".join(
        b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [d]}}]}).encode() + b"\n\n"
        for d in deltas
    )

    frames = translator.feed(body) + translator.close()

    indices = [json.loads(f[6:])["choices"][0]["delta"]["tool_calls"][0]["index"] for f in frames[:4]]
    assert indices == [0, 0, 0, 1]
    assert json.loads(frames[4][6:])["error"]["code"] == "upstream_stream_error"
    assert frames[-1] == SSE_DONE


def test_mistral_streamed_tool_call_works_with_the_sdk_stream_helper(gateway, fake_provider):
    stream = rec.chunks_as_sse("mistral", "chat_stream_tool_call_chunks_only")
    fake = fake_provider("mistral").on("POST", CHAT, reply_stream(rec.sse_frames(stream)))
    serve(gateway, fake, "mistral-small-latest")
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]

    with sdk(gateway).chat.completions.stream(
        model="mistral-small-latest", messages=[{"role": "user", "content": "weather?"}], tools=tools
    ) as events:
        final = events.get_final_completion()

    assert final.choices[0].message.tool_calls[0].id == "gSIMJiOkT"
