"""A fake OpenAI-compatible chat upstream for the accounting tests.

A user message ``tokens:P`` makes it report ``prompt_tokens=P`` (and 3 completion tokens),
so every request's usage is known in advance; ``fail:NAME:STATUS`` makes the fake called
NAME answer STATUS instead. Streams carry the usage-only event only when asked for it
(``stream_options.include_usage``), as OpenAI does.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

COMPLETION_TOKENS = 3
INSTRUCTION = re.compile(r"tokens:(\d+)|fail:([\w-]+):(\d+)")


def _instructions(body: dict) -> tuple[int, dict[str, int]]:
    prompt, failures = 0, {}
    for message in body.get("messages") or []:
        for tokens, name, status in INSTRUCTION.findall(str(message.get("content", ""))):
            if tokens:
                prompt = int(tokens)
            elif name:
                failures[name] = int(status)
    return prompt, failures


def chat_upstream(name: str):
    async def behaviour(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        prompt, failures = _instructions(body)
        if name in failures:
            status = failures[name]
            return web.json_response(
                {"error": {"message": f"{name} says {status}", "type": "server_error"}}, status=status
            )
        usage = {"prompt_tokens": prompt, "completion_tokens": COMPLETION_TOKENS, "total_tokens": prompt + 3}
        model = body.get("model", "")
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
        for delta, finish in (({"role": "assistant", "content": "ok"}, None), ({}, "stop")):
            event = {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(b"data: " + json.dumps({**chunk, "choices": [], "usage": usage}).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    return behaviour
