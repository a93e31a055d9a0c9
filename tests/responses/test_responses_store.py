"""``previous_response_id`` on translated backends: the gateway's store of recent responses.

These tests use the database (the store writes there from its flush thread, and reads there in
a worker thread), so they are ``django_db(transaction=True)``.
"""

from __future__ import annotations

import json
from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from responses_store.models import StoredResponse
from responses_store.services import stored_responses_retention_enforce
from responses_store.store import ResponseStore
from responses_store.tasks import stored_responses_retention_task
from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import reply_bytes

MODEL = "gpt-4o"


def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="client-key", max_retries=0)


@pytest.fixture
def store():
    store = ResponseStore(days=30, flush_seconds=0.05)
    store.start()
    yield store
    store.stop()


@pytest.fixture
def chat_backend(gateway, fake_provider):
    fake = fake_provider("vllm")
    gateway.route((route_for(fake), [MODEL]))
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    return gateway, fake


@pytest.mark.django_db(transaction=True)
def test_previous_response_id_continues_the_conversation(chat_backend, store):
    gateway, fake = chat_backend
    gateway.gateway.responses.store = store
    client = sdk(gateway)

    first = client.responses.create(model=MODEL, instructions="Be brief.", input="What is 4200 + 42?")
    # The next turn right away is answered from what is not written yet; after a flush, from the table.
    second = client.responses.create(model=MODEL, input="And minus 42?", previous_response_id=first.id)
    assert store.flush()
    assert StoredResponse.objects.filter(response_id__in=[first.id, second.id]).count() == 2
    store._unwritten.clear()
    third = client.responses.create(model=MODEL, input="Thanks!", previous_response_id=second.id)

    assert third.previous_response_id == second.id
    turns = [request.json()["messages"] for request in fake.requests_to("/v1/chat/completions")]
    assert turns[1] == [
        {"role": "user", "content": "What is 4200 + 42?"},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "And minus 42?"},
    ]
    # Instructions are not carried to later turns (as at OpenAI); the turns are.
    assert [m["content"] for m in turns[2]] == [
        "What is 4200 + 42?",
        first.output_text,
        "And minus 42?",
        second.output_text,
        "Thanks!",
    ]


@pytest.mark.django_db(transaction=True)
def test_unknown_or_foreign_previous_response_is_not_found(chat_backend, store):
    gateway, fake = chat_backend
    gateway.gateway.responses.store = store
    StoredResponse.objects.create(
        response_id="resp_other_org",
        organisation="acme",
        model=MODEL,
        input_items=[{"role": "user", "content": "secret plans"}],
        output_items=[],
        created_at=timezone.now(),
    )

    for unknown in ("resp_nope", "resp_other_org"):
        with pytest.raises(openai.BadRequestError) as missing:
            sdk(gateway).responses.create(model=MODEL, input="go on", previous_response_id=unknown)
        assert missing.value.body["code"] == "previous_response_not_found"
        assert missing.value.body["param"] == "previous_response_id"
    assert fake.received == []


def test_store_off_is_a_clear_400(chat_backend):
    gateway, fake = chat_backend
    gateway.gateway.responses.store = None

    with pytest.raises(openai.BadRequestError) as refused:
        sdk(gateway).responses.create(model=MODEL, input="go on", previous_response_id="resp_123")

    assert refused.value.body["code"] == "responses_store_disabled"
    assert "ELDRIC_RESPONSES_STORE_DAYS" in refused.value.body["message"]
    assert fake.received == []


@pytest.mark.django_db(transaction=True)
def test_store_false_is_not_kept(chat_backend, store):
    gateway, _ = chat_backend
    gateway.gateway.responses.store = store

    kept = sdk(gateway).responses.create(model=MODEL, input="hi")
    skipped = sdk(gateway).responses.create(model=MODEL, input="hi", store=False)
    store.flush()

    assert list(StoredResponse.objects.values_list("response_id", flat=True)) == [kept.id]
    assert skipped.store is False


@pytest.mark.django_db
def test_retention_deletes_what_is_older_than_the_setting(settings):
    settings.ELDRIC_RESPONSES_STORE_DAYS = 7
    now = timezone.now()
    for name, age in (("resp_old", 8), ("resp_new", 6)):
        StoredResponse.objects.create(
            response_id=name,
            organisation="default",
            input_items=[],
            output_items=[],
            created_at=now - timedelta(days=age),
        )

    assert stored_responses_retention_task() == 1
    assert list(StoredResponse.objects.values_list("response_id", flat=True)) == ["resp_new"]
    settings.ELDRIC_RESPONSES_STORE_DAYS = 0
    assert stored_responses_retention_enforce() == 1
    assert not StoredResponse.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_passthrough_backend_gets_a_stored_conversation_spelled_out(gateway, fake_provider, store):
    chat = fake_provider("vllm")
    native = fake_provider("openai")
    gateway.route((route_for(chat), [MODEL]), (route_for(native, responses_api=True), ["gpt-4.1"]))
    chat.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    from tests.fakes import openai_responses as fake_responses

    native.on("POST", "/v1/responses", fake_responses.answer(json.dumps(fake_responses.response_body()).encode()))
    gateway.gateway.responses.store = store
    client = sdk(gateway)

    first = client.responses.create(model=MODEL, input="What is 4200 + 42?")
    client.responses.create(model="gpt-4.1", input="Say it as a story.", previous_response_id=first.id)

    sent = native.requests_to("/v1/responses")[0].json()
    assert "previous_response_id" not in sent
    assert sent["input"][0] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "What is 4200 + 42?"}],
    }
    assert sent["input"][1]["type"] == "message" and sent["input"][1]["content"][0]["text"] == first.output_text
    assert "id" not in sent["input"][1]  # the gateway's item ids mean nothing to that backend
    assert sent["input"][2:] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say it as a story."}]}
    ]


class _DatabaseAway(ResponseStore):
    """A store whose database cannot be reached (what ``get`` raises then)."""

    async def get(self, response_id: str, organisation: str):
        from django.db import OperationalError

        raise OperationalError("connection refused")


def test_a_store_that_cannot_be_read_is_a_503_not_a_500(chat_backend):
    gateway, fake = chat_backend
    gateway.gateway.responses.store = _DatabaseAway(days=30)

    with pytest.raises(openai.InternalServerError) as failed:
        sdk(gateway).responses.create(model=MODEL, input="go on", previous_response_id="resp_123")

    assert failed.value.status_code == 503
    assert failed.value.body["code"] == "responses_store_unavailable"
    assert fake.received == []


@pytest.mark.django_db(transaction=True)
def test_a_tool_loop_with_previous_response_id_on_an_anthropic_backend(gateway, fake_provider, store):
    from tests.fakes import anthropic as fake_anthropic

    fake = fake_provider("anthropic")
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-0001"), [MODEL]))
    fake.on("POST", "/v1/messages", fake_anthropic.conversation("messages_parallel_tool_use", 2))
    gateway.gateway.responses.store = store
    tool = {
        "type": "function",
        "name": "secret_retrieval_tool",
        "description": "A tool that requires a password to retrieve a secret.",
        "parameters": {"type": "object", "properties": {"password": {"type": "string"}}, "required": ["password"]},
    }
    client = sdk(gateway)

    first = client.responses.create(
        model=MODEL, input="Please retrieve the secrets for: mellon,radiance", tools=[tool], max_output_tokens=1024
    )
    secrets = {"mellon": "Welcome to Moria!", "radiance": "Life before Death"}
    outputs = [
        {
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": secrets[json.loads(item.arguments)["password"]],
        }
        for item in first.output
        if item.type == "function_call"
    ]
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, input=outputs, tools=[tool], max_output_tokens=1024
    )

    assert "Welcome to Moria!" in second.output_text
    # The fake checks Anthropic's rules (every tool_use answered by a tool_result right after it).
    messages = fake.requests_to("/v1/messages")[1].json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[1]["content"]] == ["text", "tool_use", "tool_use"]
    assert [(b["tool_use_id"], b["content"]) for b in messages[2]["content"]] == [
        ("toolu_01BUvqBj8Yb34pNAbCJJY1oc", "Welcome to Moria!"),
        ("toolu_01VPuQJ1LonDBYXrr8pqPkqQ", "Life before Death"),
    ]
