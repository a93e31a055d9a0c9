"""A fake OpenAI Responses API (``POST /v1/responses``), answering in the documented shapes.

Its answers are the API reference's documented examples, kept with the recordings
(``tests/fixtures/recorded/openai/responses_create`` and ``responses_stream_text``, marked there
as documented, not live): a ``response`` object with a ``message`` output item, and the event
sequence ``response.created`` … ``response.completed``; a test may change the text, the model
or the status. Each request is checked the way OpenAI would (a bearer key, a model, an
input) and refused with OpenAI's 400 when it is not acceptable.
"""

from __future__ import annotations

import json

from aiohttp import web

from tests.fakes import recordings
from tests.fakes.server import Behaviour, reply_stream

RESPONSE_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
MESSAGE_ID = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
TEXT = "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool."
USAGE = {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 9},
    "total_tokens": 123,
}


def response_body(text: str = TEXT, *, model: str = "gpt-4.1-2025-04-14", status: str = "completed") -> dict:
    """The documented ``response``, with this text, model and status."""
    body = json.loads(recordings.response("openai", "responses_create"))
    message = body["output"][0]
    message["content"][0]["text"] = text
    body.update(model=model, status=status)
    if status != "completed":
        body.update(output=[], usage=None)
    return body


def stream_frames(text: str = TEXT, *, pieces: int = 3) -> list[bytes]:
    """The documented event sequence for one text answer, ``text`` sent in ``pieces`` deltas."""
    events: list[dict] = []
    in_progress = response_body(text, status="in_progress")
    events.append({"type": "response.created", "response": in_progress})
    events.append({"type": "response.in_progress", "response": in_progress})
    item = {"id": MESSAGE_ID, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
    where = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": []}
    events.append({"type": "response.content_part.added", **where, "part": empty})
    size = max(1, len(text) // pieces + 1)
    for start in range(0, len(text), size):
        events.append(
            {"type": "response.output_text.delta", **where, "delta": text[start : start + size], "logprobs": []}
        )
    events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
    part = {"type": "output_text", "text": text, "annotations": []}
    events.append({"type": "response.content_part.done", **where, "part": part})
    done_item = response_body(text)["output"][0]
    events.append({"type": "response.output_item.done", "output_index": 0, "item": done_item})
    events.append({"type": "response.completed", "response": response_body(text)})
    frames = []
    for number, event in enumerate(events):
        event["sequence_number"] = number
        frames.append(b"event: " + event["type"].encode() + b"\ndata: " + json.dumps(event).encode() + b"\n\n")
    return frames


def problems(headers: dict[str, str], raw: bytes) -> list[str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    found = []
    if not lowered.get("authorization", "").startswith("Bearer "):
        found.append("You didn't provide an API key.")
    try:
        body = json.loads(raw)
    except ValueError:
        return [*found, "We could not parse the JSON body of your request."]
    if not isinstance(body, dict) or not body.get("model"):
        found.append("Missing required parameter: 'model'.")
    elif body.get("input") in (None, "", []):
        found.append("Missing required parameter: 'input'.")
    return found


def validated(inner: Behaviour) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        found = problems(dict(request.headers), await request.read())
        if found:
            error = {"message": " ".join(found), "type": "invalid_request_error", "param": None, "code": None}
            return web.json_response({"error": error}, status=400)
        return await inner(request)

    return behaviour


def answer(body: bytes) -> Behaviour:
    """Answer every valid request with these exact bytes (JSON, or SSE when it streams)."""

    async def behaviour(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return validated(behaviour)


def streamed(frames: list[bytes]) -> Behaviour:
    return validated(reply_stream(frames))
