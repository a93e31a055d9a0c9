"""Client requests with wrong-typed fields: every adapter either translates them or answers
``InvalidRequestError`` naming the field (the gateway's 400), never any other exception.

The cases are a generated table: every field of a request that uses every OpenAI chat feature
(each message role, each content part kind, tools, tool_choice, response_format, ...) is, in turn,
removed or replaced by each value of ``BAD_VALUES``.
"""

from __future__ import annotations

import copy
import json

import pytest

from backends.providers import provider_for
from backends.providers.base import InvalidRequestError, UpstreamRequest
from backends.snapshot import BackendRoute
from tests.conftest import route_for

MISSING = object()


def _deep(levels: int):
    """A list nested ``levels`` deep, built without recursion (as json.loads could produce it)."""
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


BAD_VALUES = [
    MISSING,
    None,
    0,
    -1,
    2**64,
    10**30,
    1.5,
    -1e308,
    float("inf"),
    float("nan"),
    True,
    False,
    "",
    "x",
    "\ud800",
    "a\udfffb",
    [],
    [None],
    [1, "x"],
    ["\ud800"],
    [{}],
    {},
    {"a": None},
    {"\ud800": 1},
    {"type": 5, "text": [], "function": "f", "url": {}},
    {"type": "text", "text": 5},
    {"type": "function", "function": {"name": 5}},
    _deep(900),
]

CHAT = {
    "model": "some-model",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "What is in this picture and this file?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the weather.",
            "refusal": None,
            "reasoning_content": "The user wants weather.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
        {"role": "user", "content": "Thanks."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": False,
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "parallel_tool_calls": True,
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    "stop": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.1,
    "max_tokens": 2000,
    "max_completion_tokens": 2000,
    "n": 1,
    "seed": 7,
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "user-1",
    "metadata": {"user_id": "user-1"},
    "logprobs": False,
    "top_logprobs": 0,
    "logit_bias": {"50256": -100},
    "reasoning_effort": "low",
    "service_tier": "auto",
    "store": False,
}

EMBEDDINGS = {
    "model": "embed-model",
    "input": ["first text", "second text"],
    "encoding_format": "float",
    "dimensions": 8,
    "user": "user-1",
    "input_type": "search_query",
}

ROUTES = {
    "anthropic": BackendRoute(name="claude", kind="anthropic", url="http://anthropic.test/v1", api_key="k"),
    "cohere": BackendRoute(name="cohere", kind="cohere", url="http://cohere.test", api_key="k"),
    "ollama": BackendRoute(name="ollama", kind="ollama", url="http://ollama.test", api_key=""),
    "mistral": BackendRoute(name="mistral", kind="openai_compatible", url="https://api.mistral.ai/v1", api_key="k"),
    "openai": BackendRoute(name="openai", kind="openai_compatible", url="https://api.openai.com/v1", api_key="k"),
}
EMBEDDING_ROUTES = ("cohere", "ollama", "openai", "anthropic")


def paths(value, prefix: str = "") -> list[str]:
    """Every field path of ``value`` in OpenAI's dotted notation, parents before children."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        path = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else key
        found.append(path)
        found.extend(paths(child, path))
    return found


def substituted(payload: dict, path: str, value) -> dict:
    result = copy.deepcopy(payload)
    parent, key = _locate(result, path)
    if value is MISSING:
        del parent[key]
    else:
        parent[key] = value
    return result


def _locate(payload: dict, path: str):
    tokens = path.replace("[", ".[").split(".")
    node = payload
    for token in tokens[:-1]:
        node = node[int(token[1:-1])] if token.startswith("[") else node[token]
    last = tokens[-1]
    return node, int(last[1:-1]) if last.startswith("[") else last


def body_of(request: UpstreamRequest) -> bytes:
    assert isinstance(request, UpstreamRequest)
    return request.content or b""


def check(build, route: BackendRoute, payload: dict, path: str, value) -> str | None:
    """None when ``build`` behaved; else a description of what went wrong."""
    raw = json.dumps(payload).encode()
    try:
        request = build(route, payload, raw)
    except InvalidRequestError as exc:
        param = exc.param
        if param is not None and not isinstance(param, str):
            return f"{path}={value!r:.60}: param is {type(param).__name__}"
        root = (param or "").replace("[", ".").split(".")[0]
        if param is not None and root not in CHAT and root not in EMBEDDINGS:
            return f"{path}={value!r:.60}: param {param!r} names no field of the request"
        str(exc).encode("utf-8")  # the message must be sendable as it is
        return None
    except Exception as exc:  # the point of the test: nothing else may escape
        return f"{path}={value!r:.60}: {type(exc).__name__}: {exc}"[:300]
    content = body_of(request)
    if content is not raw:
        try:
            json.loads(content.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            return f"{path}={value!r:.60}: upstream body is not strict UTF-8 JSON: {exc}"
    return None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize("route_key", ROUTES)
def test_the_full_request_translates_for_every_adapter(route_key):
    route = ROUTES[route_key]
    request = provider_for(route.kind).chat_request(route, CHAT, json.dumps(CHAT).encode())
    assert json.loads(request.content)["model"] == "some-model"


@pytest.mark.parametrize("route_key", EMBEDDING_ROUTES[:3])
def test_the_full_embeddings_request_translates(route_key):
    route = ROUTES[route_key]
    request = provider_for(route.kind).embeddings_request(route, EMBEDDINGS, json.dumps(EMBEDDINGS).encode())
    assert json.loads(request.content)["model"] == "embed-model"


@pytest.mark.parametrize("path", paths(CHAT))
@pytest.mark.parametrize("route_key", ROUTES)
def test_a_wrong_chat_field_is_translated_or_refused_naming_it(route_key, path):
    route = ROUTES[route_key]
    build = provider_for(route.kind).chat_request
    problems = [check(build, route, substituted(CHAT, path, value), path, value) for value in BAD_VALUES]
    assert [p for p in problems if p] == []


@pytest.mark.parametrize("path", paths(EMBEDDINGS))
@pytest.mark.parametrize("route_key", EMBEDDING_ROUTES)
def test_a_wrong_embeddings_field_is_translated_or_refused_naming_it(route_key, path):
    route = ROUTES[route_key]
    build = provider_for(route.kind).embeddings_request
    problems = [check(build, route, substituted(EMBEDDINGS, path, value), path, value) for value in BAD_VALUES]
    assert [p for p in problems if p] == []


@pytest.mark.parametrize("route_key", ["anthropic", "cohere", "ollama"])
@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("tools", 1),
        ("temperature", "hot"),
        ("temperature", 7),
        ("max_tokens", 0),
        ("stop[0]", 1),
        ("messages[2].content[0].text", 5),
        ("messages[2].content[1].image_url", 5),
        ("messages[3].tool_calls", "call"),
        ("messages[5]", "hello"),
        ("stream_options", []),
    ],
)
def test_refusals_name_the_offending_param(route_key, path, value):
    route = ROUTES[route_key]
    with pytest.raises(InvalidRequestError) as raised:
        provider_for(route.kind).chat_request(route, substituted(CHAT, path, value), b"")
    assert raised.value.param == path


@pytest.mark.parametrize("route_key", ["anthropic", "cohere", "ollama", "mistral"])
@pytest.mark.parametrize(
    "path", ["model", "messages[0].content", "messages[5].content", "tools[0].function.description"]
)
def test_a_lone_surrogate_is_refused_naming_where_it_is(route_key, path):
    route = ROUTES[route_key]
    # Mistral re-encodes only requests it rewrites; max_completion_tokens makes it rewrite this one.
    with pytest.raises(InvalidRequestError) as raised:
        provider_for(route.kind).chat_request(route, substituted(CHAT, path, "caf\ud800"), b"")
    assert raised.value.param == path
    assert "surrogate" in str(raised.value)


def test_embeddings_input_with_a_surrogate_is_refused_naming_the_item():
    route = ROUTES["cohere"]
    with pytest.raises(InvalidRequestError) as raised:
        provider_for("cohere").embeddings_request(route, substituted(EMBEDDINGS, "input[1]", "\udc00"), b"")
    assert raised.value.param == "input[1]"


def test_passthrough_request_is_forwarded_untouched_whatever_it_holds():
    route = ROUTES["openai"]
    garbage = {"model": "m", "messages": "not a list", "tools": 1, "temperature": "\ud800"}
    raw = b'{"model":"m","messages":"not a list","tools":1,"temperature":"\\ud800"}'
    assert provider_for("openai_compatible").chat_request(route, garbage, raw).content is raw


# --- through the real gateway ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", [("cohere", "/v1"), ("ollama", ""), ("anthropic", "/v1")], ids=lambda b: b[0])
@pytest.mark.parametrize(
    "case",
    [
        ("tools", 1, "tools"),
        ("temperature", "hot", "temperature"),
        ("messages", [{"role": "user", "content": [{"type": "text", "text": 5}]}], "messages[0].content[0].text"),
        ("messages", [{"role": "user", "content": "caf\ud800"}], "messages[0].content"),
    ],
    ids=lambda case: case[2],
)
def test_the_client_gets_a_400_naming_the_param_and_the_backend_is_not_called(gateway, fake_provider, backend, case):
    (kind, path), (field, value, param) = backend, case
    fake = fake_provider(kind)
    gateway.route((route_for(fake, kind=kind, path=path), ["some-model"]))
    body = {"model": "some-model", "messages": [{"role": "user", "content": "hi"}], field: value}
    with gateway.client() as client:
        answer = client.post("/v1/chat/completions", content=json.dumps(body).encode())
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert fake.received == []  # refused before anything went upstream
