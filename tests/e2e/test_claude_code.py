"""Claude Code, unmodified, through ``/v1/messages`` to an OpenAI-compatible backend.

``make claude-code-deps`` installs the pinned ``@anthropic-ai/claude-code`` from npm into
``var/claude-code/``. The test runs ``claude -p`` in a scratch directory with
``ANTHROPIC_BASE_URL`` pointing at the gateway. The fake upstream speaks OpenAI's chat stream:
it answers the first turn with a call to Claude Code's ``Read`` tool, and the turn that carries
the tool's result with text quoting it. Only Claude Code can read the file, so the file's random
content in the final answer proves the whole round trip: Anthropic request → chat request →
chat tool-call stream → Anthropic ``tool_use`` → local tool run → ``tool_result`` → chat
``tool`` message → text back.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import REQUIRE_SERVICES, route_for

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / "var" / "claude-code" / "node_modules" / ".bin" / "claude"
MODEL = "gpt-4o"


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    data = {"id": "chatcmpl-cc", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": [choice]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def agent_upstream(file_path: str):
    """An OpenAI chat backend that acts like a model using Claude Code's tools."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await answer.prepare(request)
        results = [m for m in body["messages"] if m.get("role") == "tool"]
        tools = {t["function"]["name"] for t in body.get("tools", [])}
        if results:
            content = results[-1]["content"]
            text = content if isinstance(content, str) else json.dumps(content)
            await answer.write(_chunk({"role": "assistant", "content": "The file says: " + text}))
            await answer.write(_chunk({}, "stop"))
        elif "Read" in tools:
            call = {"index": 0, "id": "call_read_1", "type": "function", "function": {"name": "Read", "arguments": ""}}
            await answer.write(_chunk({"role": "assistant", "tool_calls": [call]}))
            arguments = json.dumps({"file_path": file_path})
            await answer.write(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}))
            await answer.write(_chunk({}, "tool_calls"))
        else:  # Claude Code's side requests (titles, summaries): a short text
            await answer.write(_chunk({"role": "assistant", "content": "ok"}))
            await answer.write(_chunk({}, "stop"))
        usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
        last = {"id": "chatcmpl-cc", "choices": [], "usage": usage}
        await answer.write(b"data: " + json.dumps(last).encode() + b"\n\n")
        await answer.write(b"data: [DONE]\n\n")
        return answer

    return behaviour


@pytest.fixture
def claude():
    if not CLAUDE.exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"Claude Code is required under CI: {CLAUDE} is missing (make claude-code-deps)")
        pytest.skip("Claude Code not installed (make claude-code-deps)")
    return CLAUDE


def test_claude_code_finishes_a_turn_with_a_tool_use(claude, gateway, fake_provider, tmp_path):
    secret = secrets.token_hex(8)
    notes = tmp_path / "notes.txt"
    notes.write_text(f"the secret word is {secret}\n")
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", agent_upstream(str(notes)))
    gateway.route((route_for(fake), [MODEL]))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # no user settings, no login
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": "client-key",
        "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }

    command = [str(claude), "-p", "What does notes.txt say?", "--model", MODEL]
    done = subprocess.run(
        [*command, "--output-format", "json", "--allowedTools", "Read"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["subtype"] == "success" and not result["is_error"], result
    assert result["num_turns"] == 2  # the tool call, then the answer
    assert f"the secret word is {secret}" in result["result"]
    chats = [r.json() for r in fake.requests_to("/v1/chat/completions")]
    tool_turn = next(body for body in chats if any(m.get("role") == "tool" for m in body["messages"]))
    assistant = next(m for m in tool_turn["messages"] if m.get("role") == "assistant")
    assert assistant["tool_calls"][0]["id"] == "call_read_1"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"file_path": str(notes)}
    # The client's key went to the gateway only: the upstream got the backend's key.
    assert all(r.headers.get("Authorization") == "Bearer sk-test-key-0001" for r in fake.received)
