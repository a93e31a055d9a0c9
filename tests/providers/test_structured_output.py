"""Structured output (``response_format``) through the real gateway to Anthropic, Cohere and
Ollama backends, with the official openai SDK's ``beta.chat.completions.parse`` and fake
upstreams that reject any request their provider would reject (tests/fakes/).

Anthropic carries the schema as a forced tool (``backends/providers/anthropic/structured.py``):
the fake answers a forced ``tool_choice`` the way Anthropic does, with one ``tool_use`` block.
"""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import route_for
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import cohere as fake_cohere
from tests.fakes import ollama as fake_ollama
from tests.fakes import recordings

CLAUDE = "claude-sonnet-4-0"
COMMAND = "command-r7b-12-2024"
GEMMA = "gemma3:1b"
EVENT = {"name": "Science fair", "date": "Friday", "participants": ["Alice", "Bob"]}
MESSAGES = [
    {"role": "system", "content": "Extract the event information."},
    {"role": "user", "content": "Alice and Bob are going to a science fair on Friday."},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class CalendarEvent(BaseModel):
    name: str
    date: str
    participants: list[str]


class Answer(BaseModel):
    answer: str


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def claude(fake_provider, gateway):
    fake = fake_provider("claude")
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-key-0001"), [CLAUDE]))
    return fake


@pytest.fixture
def command(fake_provider, gateway):
    fake = fake_provider("command")
    gateway.route((route_for(fake, kind="cohere"), [COMMAND]))
    return fake


@pytest.fixture
def gemma(fake_provider, gateway):
    fake = fake_provider("gemma")
    gateway.route((route_for(fake, kind="ollama", key="", path=""), [GEMMA]))
    return fake


# --- Anthropic: a forced tool whose input is the answer ----------------------------------------


def test_parse_with_a_pydantic_model_returns_the_parsed_object_from_anthropic(claude, client):
    claude.on("POST", "/v1/messages", fake_anthropic.forced_tool(EVENT))

    completion = client.beta.chat.completions.parse(model=CLAUDE, messages=MESSAGES, response_format=CalendarEvent)

    choice = completion.choices[0]
    assert choice.message.parsed == CalendarEvent(**EVENT)
    assert json.loads(choice.message.content) == EVENT
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    sent = claude.requests_to("/v1/messages")[0].json()
    assert sent["tool_choice"] == {"type": "tool", "name": "CalendarEvent"}
    assert sent["tools"][0]["input_schema"]["properties"].keys() == {"name", "date", "participants"}


def test_streamed_json_schema_arrives_as_content_that_parses(claude, client):
    claude.on("POST", "/v1/messages", fake_anthropic.forced_tool(EVENT, fragment=5))

    with client.beta.chat.completions.stream(model=CLAUDE, messages=MESSAGES, response_format=CalendarEvent) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()

    assert len(deltas) > 3  # it streamed, fragment by fragment
    assert json.loads("".join(deltas)) == EVENT
    assert final.choices[0].message.parsed == CalendarEvent(**EVENT)
    assert final.choices[0].finish_reason == "stop"
    assert not final.choices[0].message.tool_calls


def test_json_object_is_a_permissive_forced_tool(claude, client):
    claude.on("POST", "/v1/messages", fake_anthropic.forced_tool({"colour": "blue", "count": 3}))

    completion = client.chat.completions.create(
        model=CLAUDE, messages=MESSAGES, response_format={"type": "json_object"}
    )

    assert json.loads(completion.choices[0].message.content) == {"colour": "blue", "count": 3}
    tool = claude.requests_to("/v1/messages")[0].json()["tools"][0]
    assert tool["input_schema"] == {"type": "object", "additionalProperties": True}


def test_with_client_tools_claude_may_call_a_tool_or_answer_in_the_schema(claude, client):
    tool_turn = fake_anthropic.recorded("messages_parallel_tool_use", 1)
    claude.on("POST", "/v1/messages", fake_anthropic.in_sequence(tool_turn, fake_anthropic.forced_tool(EVENT)))
    secret_tool = {
        "type": "function",
        "function": {
            "name": "secret_retrieval_tool",
            "strict": True,
            "parameters": {"type": "object", "properties": {"password": {"type": "string"}}},
        },
    }

    first = client.beta.chat.completions.parse(
        model=CLAUDE, messages=MESSAGES, tools=[secret_tool], response_format=CalendarEvent
    )

    sent = claude.requests_to("/v1/messages")[0].json()
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [tool["name"] for tool in sent["tools"]] == ["secret_retrieval_tool", "CalendarEvent"]
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.tool_calls[0].function.name == "secret_retrieval_tool"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_effort": "low", "max_tokens": 4000}, "response_format"),
        ({"response_format": {"type": "regex", "regex": "a+"}}, "response_format"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}},
            "response_format.json_schema.schema",
        ),
        (
            {
                "tools": [WEATHER_TOOL],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "get_weather", "schema": {"type": "object"}},
                },
            },
            "response_format.json_schema.name",
        ),
    ],
    ids=["with-thinking", "unknown-type", "array-root", "name-clash"],
)
def test_a_format_anthropic_cannot_carry_is_a_400_before_any_upstream_call(claude, gateway, extra, param):
    body = {
        "model": CLAUDE,
        "messages": MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": {"name": "event", "schema": {"type": "object"}}},
        **extra,
    }
    with gateway.client() as http:
        answer = http.post("/v1/chat/completions", json=body)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "anthropic" in error["message"]
    assert claude.requests_to("/v1/messages") == []


def test_prose_instead_of_the_forced_tool_is_not_a_200(claude, client):
    claude.on("POST", "/v1/messages", fake_anthropic.recorded("messages_text"))

    with pytest.raises(openai.APIStatusError) as raised:
        client.beta.chat.completions.parse(model=CLAUDE, messages=MESSAGES, response_format=CalendarEvent)

    assert raised.value.status_code == 502


# --- Cohere: response_format json_object with json_schema --------------------------------------


def cohere_json_answer(text: str) -> bytes:
    answer = json.loads(recordings.response("cohere", "v2_chat_simple_pydantic"))
    answer["message"]["content"] = [{"type": "text", "text": text}]
    return json.dumps(answer).encode()


def test_parse_with_a_pydantic_model_through_cohere_carries_the_schema(command, client):
    command.on("POST", "/v2/chat", fake_cohere.chat(cohere_json_answer(json.dumps(EVENT))))

    completion = client.beta.chat.completions.parse(model=COMMAND, messages=MESSAGES, response_format=CalendarEvent)

    assert completion.choices[0].message.parsed == CalendarEvent(**EVENT)
    sent = command.requests_to("/v2/chat")[0].json()["response_format"]
    assert sent["type"] == "json_object"
    assert sent["json_schema"]["properties"].keys() == {"name", "date", "participants"}


def test_an_unknown_format_type_is_a_400_naming_cohere(command, gateway):
    with gateway.client() as http:
        answer = http.post(
            "/v1/chat/completions",
            json={"model": COMMAND, "messages": MESSAGES, "response_format": {"type": "grammar", "grammar": "x"}},
        )

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "response_format"
    assert "cohere" in answer.json()["error"]["message"]
    assert command.requests_to("/v2/chat") == []


# --- Ollama: format "json" or the schema itself ------------------------------------------------


def test_parse_with_a_pydantic_model_through_ollama_sends_the_schema_as_format(gemma, client):
    gemma.on("POST", "/api/chat", fake_ollama.chat(recordings.response("ollama", "native_chat_format_json")))

    completion = client.beta.chat.completions.parse(model=GEMMA, messages=MESSAGES, response_format=Answer)

    assert completion.choices[0].message.parsed == Answer(answer="600")
    sent = gemma.requests_to("/api/chat")[0].json()["format"]
    assert sent["properties"] == {"answer": {"title": "Answer", "type": "string"}}


def test_json_object_through_ollama_is_format_json(gemma, client):
    gemma.on("POST", "/api/chat", fake_ollama.chat(recordings.response("ollama", "native_chat_format_json")))

    completion = client.chat.completions.create(model=GEMMA, messages=MESSAGES, response_format={"type": "json_object"})

    assert json.loads(completion.choices[0].message.content) == {"answer": "600"}
    assert gemma.requests_to("/api/chat")[0].json()["format"] == "json"


def test_an_unknown_format_type_is_a_400_naming_ollama(gemma, gateway):
    with gateway.client() as http:
        answer = http.post(
            "/v1/chat/completions",
            json={"model": GEMMA, "messages": MESSAGES, "response_format": {"type": "regex"}},
        )

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "response_format"
    assert "ollama" in answer.json()["error"]["message"]
    assert gemma.requests_to("/api/chat") == []


def test_streamed_prose_instead_of_the_forced_tool_ends_in_an_error_event(claude, client):
    claude.on("POST", "/v1/messages", fake_anthropic.recorded("messages_stream_text"))
    deltas = []

    with (
        pytest.raises(openai.APIError) as raised,
        client.beta.chat.completions.stream(model=CLAUDE, messages=MESSAGES, response_format=CalendarEvent) as stream,
    ):
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)

    assert "without the forced response_format tool call" in str(raised.value)
    assert "".join(deltas) == ""  # no prose reached the client
