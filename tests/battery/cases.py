"""The battery's JSON cases, generated: each is one malformed request and the rule its answer must obey.

Wrong types: every field of a chat request that uses each message role, content parts, tool
calls and the common sampling fields (and every field of an embeddings request) is, in turn,
removed or replaced by each JSON value of another type. Each case goes to each backend kind's
model. Then bad UTF-8 and lone surrogates in every string, deep nesting, broken and empty bodies,
bodies over the limit, and wrong methods.
"""

from __future__ import annotations

import copy
import dataclasses
import json

from tests.battery.conftest import ADMIN_TOKEN, CHAT_MODELS, EMBEDDING_MODELS, MAX_BODY_BYTES

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
BACKENDS_TEST_PATH = "/api/v1/backends/test"

# What the answer must be.
WRONG_TYPE = "wrong_type"  # 200 (translated, or the upstream took it) or 400 naming the field or nothing
STREAMED = "streamed"  # as WRONG_TYPE; a 200 is a well-formed event stream ending in [DONE]
GATEWAY_FIELD = "gateway_field"  # a field the gateway checks itself: 400 naming exactly this field
NAMES_FIELD = "names_field"  # 400 naming this field (or one inside it)
INVALID = "invalid"  # 400
TOO_LARGE = "too_large"  # 413
METHOD = "method"  # 405 with Allow
MEDIA_TYPE = "media_type"  # 415: the management API reads JSON only

CHAT = {
    "model": "set per kind",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        # Sent escaped as a surrogate pair (ensure_ascii), as many clients send non-ASCII text.
        {"role": "user", "content": "Thanks \U0001f600"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
    "tool_choice": "auto",
    "temperature": 0.5,
    "top_p": 0.9,
    "max_tokens": 100,
    "stop": ["END"],
    "seed": 7,
    "n": 1,
    "user": "u1",
    "presence_penalty": 0.1,
    "frequency_penalty": 0.1,
    "stream": False,
}
# Optional chat fields the base request leaves out: each is added with every wrong value.
CHAT_OPTIONAL = {
    "max_completion_tokens": 100,
    "stream_options": {"include_usage": True},
    "response_format": {"type": "text"},
    "parallel_tool_calls": True,
    "logprobs": False,
    "top_logprobs": 0,
    "logit_bias": {"50256": -100},
    "metadata": {"k": "v"},
    "reasoning_effort": "low",
    "service_tier": "auto",
    "store": False,
    "top_k": 40,
}
EMBEDDINGS = {"model": "set per kind", "input": ["first text", "second text"], "encoding_format": "float", "user": "u1"}
EMBEDDINGS_OPTIONAL = {"dimensions": 8, "input_type": "search_query"}

MISSING = object()
# One of each JSON type (and the edges of the number types); a case uses those of another
# type than the field's own.
WRONG_VALUES: list[tuple[str, object]] = [
    ("missing", MISSING),
    ("null", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("negative", -1),
    ("int64-overflow", 2**64),
    ("float", 1.5),
    ("empty-string", ""),
    ("string", "x"),
    ("numeric-string", "1"),
    ("empty-array", []),
    ("array-of-null", [None]),
    ("mixed-array", [1, "x", {}]),
    ("nested-array", [[["x"]]]),
    ("empty-object", {}),
    ("object", {"type": 5, "text": [], "function": "f"}),
]
# Fields the gateway itself checks before any adapter sees the request.
GATEWAY_CHECKED = {"model": (str,), "messages": (list,), "stream": (bool,), "input": (str, list)}


@dataclasses.dataclass(frozen=True)
class JsonCase:
    id: str
    path: str
    body: bytes
    rule: str
    # The field at fault, as OpenAI's ``param`` names it.
    field: str | None = None
    method: str = "POST"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str | None = "application/json"


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def field_paths(value, prefix: str = "") -> list[tuple[str, object]]:
    """Every field of ``value`` with its value, in OpenAI's notation (``messages[1].content``)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        path = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else key
        found.append((path, child))
        found.extend(field_paths(child, path))
    return found


def substituted(payload: dict, path: str, value) -> dict:
    result = copy.deepcopy(payload)
    tokens = path.replace("[", ".[").split(".")
    node = result
    for token in tokens[:-1]:
        node = node[int(token[1:-1])] if token.startswith("[") else node[token]
    last = tokens[-1]
    key = int(last[1:-1]) if last.startswith("[") else last
    if value is MISSING:
        del node[key]
    else:
        node[key] = value
    return result


def encode(payload) -> bytes:
    # allow_nan: a few cases send NaN on purpose (not JSON, but what a careless client sends).
    return json.dumps(payload, ensure_ascii=True).encode()


def _rule_for(path: str, value) -> str:
    types = GATEWAY_CHECKED.get(path)
    # ``stream`` may be left out or null, as OpenAI's schema has it.
    if types is None or (path == "stream" and (value is None or value is MISSING)):
        return WRONG_TYPE
    return WRONG_TYPE if isinstance(value, types) and value not in ("", []) else GATEWAY_FIELD


def _wrong_type_cases(endpoint: str, url: str, base: dict, optional: dict, models: dict[str, str]):
    targets = [(path, value) for path, value in field_paths(base)]
    targets += list(optional.items())
    for kind, model in models.items():
        payload = {**base, "model": model}
        for path, original in targets:
            for label, value in WRONG_VALUES:
                if value is not MISSING and json_type(value) == json_type(original):
                    continue
                if value is MISSING and path in optional:
                    continue
                start = payload if path not in optional else {**payload, path: original}
                body = encode(substituted(start, path, value))
                yield JsonCase(f"{endpoint}/{kind}/{path}={label}", url, body, _rule_for(path, value), path)


def wrong_type_cases() -> list[JsonCase]:
    return [
        *_wrong_type_cases("chat", CHAT_PATH, CHAT, CHAT_OPTIONAL, CHAT_MODELS),
        *_wrong_type_cases("embeddings", EMBEDDINGS_PATH, EMBEDDINGS, EMBEDDINGS_OPTIONAL, EMBEDDING_MODELS),
    ]


STREAM_CHAT = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}


def stream_cases() -> list[JsonCase]:
    """The top-level fields again, with ``stream: true``: the streaming translators see them too."""
    cases = []
    for kind, model in CHAT_MODELS.items():
        payload = {**STREAM_CHAT, "model": model}
        for path, original in [*payload.items(), *CHAT_OPTIONAL.items()]:
            if path in ("stream", "model", "stream_options"):
                continue
            for label, value in WRONG_VALUES:
                if value is not MISSING and json_type(value) == json_type(original):
                    continue
                if value is MISSING and path in CHAT_OPTIONAL:
                    continue
                start = payload if path in payload else {**payload, path: original}
                body = encode(substituted(start, path, value))
                rule = STREAMED if _rule_for(path, value) == WRONG_TYPE else GATEWAY_FIELD
                cases.append(JsonCase(f"chat-stream/{kind}/{path}={label}", CHAT_PATH, body, rule, path))
        for label, value in WRONG_VALUES:
            if value is not MISSING and not isinstance(value, dict):
                body = encode({**payload, "stream_options": value})
                cases.append(JsonCase(f"chat-stream/{kind}/stream_options={label}", CHAT_PATH, body, STREAMED,
                                      "stream_options"))  # fmt: skip
    return cases


# --- bad UTF-8 and lone surrogates ------------------------------------------------------------
# (label, JSON text of the bad string's inside): escapes the JSON parser decodes to lone surrogates.
SURROGATE_ESCAPES = [
    ("high", rb"\ud800"),
    ("low", rb"a\udfffb"),
    ("reversed-pair", rb"\udc00\ud800"),
]
# Raw bytes no UTF-8 decoder may accept.
INVALID_UTF8 = [
    ("ff", b"\xff"),
    ("lone-continuation", b"a\x80b"),
    ("overlong-slash", b"\xc0\xaf"),
    ("encoded-surrogate", b"\xed\xa0\x80"),
    ("truncated-sequence", b"\xe2\x82"),
]
MARK = "\u0000MARK\u0000"


def _marked_bodies(base: dict, models: dict[str, str]):
    """For each string field (and each object key) of ``base``: the body with that string marked."""
    for kind, model in models.items():
        payload = {**base, "model": model}
        for path, value in field_paths(payload):
            if isinstance(value, str) and path != "model":
                yield kind, path, encode(substituted(payload, path, MARK))
        # An object key: the path names the object that holds it.
        marked_key = copy.deepcopy(payload)
        marked_key[MARK] = "x"
        yield kind, None, encode(marked_key)


def _placeholder() -> bytes:
    return json.dumps(MARK).encode()[1:-1]


def encoding_cases() -> list[JsonCase]:
    cases = []
    placeholder = _placeholder()
    sources = [
        ("chat", CHAT_PATH, CHAT, CHAT_MODELS),
        ("embeddings", EMBEDDINGS_PATH, EMBEDDINGS, EMBEDDING_MODELS),
    ]
    for endpoint, url, base, models in sources:
        for kind, path, body in _marked_bodies(base, models):
            # A bad top-level key has no field to name: a 400 is all a client can be told.
            rule, where = (NAMES_FIELD, path) if path else (INVALID, "top-level-key")
            for label, escape in SURROGATE_ESCAPES:
                case_id = f"{endpoint}/{kind}/{where}=surrogate-{label}"
                cases.append(JsonCase(case_id, url, body.replace(placeholder, escape), rule, path))
            for label, raw in INVALID_UTF8:
                case_id = f"{endpoint}/{kind}/{where}=utf8-{label}"
                cases.append(JsonCase(case_id, url, body.replace(placeholder, raw), rule, path))
    # The model name itself: the gateway reads it before any backend is chosen.
    for label, escape in SURROGATE_ESCAPES:
        body = b'{"model": "' + escape + b'", "messages": [{"role": "user", "content": "x"}]}'
        cases.append(JsonCase(f"chat/model=surrogate-{label}", CHAT_PATH, body, NAMES_FIELD, "model"))
    for label, raw in INVALID_UTF8:
        body = b'{"model": "gpt' + raw + b'", "messages": [{"role": "user", "content": "x"}]}'
        cases.append(JsonCase(f"chat/model=utf8-{label}", CHAT_PATH, body, NAMES_FIELD, "model"))
    # Whole bodies in other encodings: JSON on the wire is UTF-8 (RFC 8259 §8.1).
    text = json.dumps({"model": CHAT_MODELS["openai_compatible"], "messages": [{"role": "user", "content": "x"}]})
    for codec in ("utf-16", "utf-16-le", "utf-32", "latin-1-with-e-acute"):
        if codec == "latin-1-with-e-acute":
            body = text.replace('"x"', '"caf\u00e9"').encode("latin-1")
        else:
            body = text.encode(codec)
        cases.append(JsonCase(f"chat/body-encoding={codec}", CHAT_PATH, body, INVALID))
    return cases


# --- nesting, broken and empty bodies, size, methods -----------------------------------------
def _nested(depth: int, opener: bytes = b"[") -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    if opener == b"{":
        return b'{"a":' * depth + b"1" + closer * depth
    return opener * depth + closer * depth


def nesting_cases() -> list[JsonCase]:
    cases = []
    for kind, model in CHAT_MODELS.items():
        for depth in (100, 900, 5_000, 20_000):
            for opener, shape in ((b"[", "arrays"), (b"{", "objects")):
                for where in ("messages[1].content", "tools[0].function.parameters", "metadata"):
                    # ``metadata`` is not in the base request: substituted() adds it.
                    payload = substituted({**CHAT, "model": model, "metadata": None}, where, MARK)
                    body = encode(payload).replace(json.dumps(MARK).encode(), _nested(depth, opener))
                    case_id = f"chat/{kind}/{where}=nested-{shape}-{depth}"
                    cases.append(JsonCase(case_id, CHAT_PATH, body, WRONG_TYPE, where))
    # Unbalanced: only openers, as a hostile client sends them.
    for depth in (1_000, 40_000):
        for url in (CHAT_PATH, EMBEDDINGS_PATH):
            cases.append(JsonCase(f"{url}/open-brackets-{depth}", url, b"[" * depth, INVALID))
            cases.append(JsonCase(f"{url}/open-objects-{depth}", url, b'{"a":' * depth, INVALID))
            body = b'{"model": "gpt-4o", "messages": ' + b"[" * depth
            cases.append(JsonCase(f"{url}/open-brackets-in-field-{depth}", url, body, INVALID))
    return cases


BROKEN_BODIES = [
    ("empty", b""),
    ("whitespace", b" \r\n\t "),
    ("null", b"null"),
    ("true", b"true"),
    ("number", b"42"),
    ("string", b'"hello"'),
    ("array", b"[]"),
    ("array-of-request", b'[{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}]'),
    ("truncated-object", b'{"model": "gpt-4o", "messages": ['),
    ("truncated-string", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x'),
    ("truncated-escape", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\\u12'),
    ("bad-escape", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\\x41"}]}'),
    ("trailing-comma", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"},]}'),
    ("single-quotes", b"{'model': 'gpt-4o', 'messages': []}"),
    ("unquoted-keys", b'{model: "gpt-4o", messages: []}'),
    ("comment", b'{"model": "gpt-4o", /* c */ "messages": [{"role": "user", "content": "x"}]}'),
    ("nan", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}'),
    ("infinity", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "top_p": -Infinity}'),
    ("huge-integer", b'{"model": "gpt-4o", "messages": [], "seed": ' + b"9" * 5000 + b"}"),
    ("two-documents", b'{"model": "gpt-4o"} {"messages": []}'),
    ("garbage-after", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}garbage'),
    ("nul-byte", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}\x00'),
    ("raw-control-in-string", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a\x01b"}]}'),
    ("bom", b'\xef\xbb\xbf{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}'),
    ("form-encoded", b"model=gpt-4o&messages=hi"),
    ("binary", bytes(range(256))),
]  # fmt: skip
# Broken bodies the gateway answers 400 for; the rest may be accepted (a BOM, NaN) or are 400 too.
ACCEPTABLE_BROKEN = {"bom"}


def broken_body_cases() -> list[JsonCase]:
    cases = []
    for url in (CHAT_PATH, EMBEDDINGS_PATH, BACKENDS_TEST_PATH):
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"} if url == BACKENDS_TEST_PATH else {}
        for label, body in BROKEN_BODIES:
            for content_type in ("application/json", None):
                rule = WRONG_TYPE if label in ACCEPTABLE_BROKEN else INVALID
                if content_type is None and url == BACKENDS_TEST_PATH and body:
                    rule = MEDIA_TYPE
                suffix = "" if content_type else "/no-content-type"
                case_id = f"{url}/body={label}{suffix}"
                cases.append(JsonCase(case_id, url, body, rule, headers=headers, content_type=content_type))
    return cases


def api_cases() -> list[JsonCase]:
    """The management API's JSON parser: nesting, surrogates, bad UTF-8, wrong types."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    base = {"name": "battery-probe", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1"}
    cases = []
    for path, original in field_paths(base):
        for label, value in WRONG_VALUES:
            if value is MISSING or json_type(value) == json_type(original):
                continue
            body = encode(substituted(base, path, value))
            cases.append(JsonCase(f"api/{path}={label}", BACKENDS_TEST_PATH, body, INVALID, path, headers=headers))
    marked = encode({**base, "name": MARK})
    for label, escape in SURROGATE_ESCAPES:
        body = marked.replace(_placeholder(), escape)
        cases.append(
            JsonCase(f"api/name=surrogate-{label}", BACKENDS_TEST_PATH, body, NAMES_FIELD, "name", headers=headers)
        )
    for label, raw in INVALID_UTF8:
        body = marked.replace(_placeholder(), raw)
        cases.append(JsonCase(f"api/name=utf8-{label}", BACKENDS_TEST_PATH, body, INVALID, headers=headers))
    for depth in (65, 1_000, 100_000):
        body = b'{"name": ' + _nested(depth) + b"}"
        cases.append(JsonCase(f"api/name=nested-{depth}", BACKENDS_TEST_PATH, body, INVALID, headers=headers))
    return cases  # fmt: skip


def size_cases() -> list[JsonCase]:
    cases = []
    for url in (CHAT_PATH, EMBEDDINGS_PATH, BACKENDS_TEST_PATH):
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"} if url == BACKENDS_TEST_PATH else {}
        for label, extra in (("limit-plus-one", 1), ("double", MAX_BODY_BYTES)):
            filler = "x" * (MAX_BODY_BYTES + extra)
            body = encode({"model": "gpt-4o", "messages": [{"role": "user", "content": filler}]})
            cases.append(JsonCase(f"{url}/size={label}", url, body, TOO_LARGE, headers=headers))
    return cases


METHODS = ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FOO"]
ALLOWED = {
    CHAT_PATH: {"POST"},
    EMBEDDINGS_PATH: {"POST"},
    "/v1/models": {"GET", "HEAD"},
    f"/v1/models/{CHAT_MODELS['openai_compatible']}": {"GET", "HEAD"},
    "/health": {"GET", "HEAD"},
    "/health/ready": {"GET", "HEAD"},
}


def method_cases() -> list[JsonCase]:
    cases = []
    for url, allowed in ALLOWED.items():
        for method in [*METHODS, "POST"]:
            if method in allowed:
                continue
            body = b"" if method in ("GET", "HEAD", "TRACE") else b"{}"
            cases.append(JsonCase(f"{url}/method={method}", url, body, METHOD, method=method))
    return cases


def all_json_cases() -> list[JsonCase]:
    return [
        *wrong_type_cases(),
        *stream_cases(),
        *encoding_cases(),
        *nesting_cases(),
        *broken_body_cases(),
        *api_cases(),
        *size_cases(),
        *method_cases(),
    ]
