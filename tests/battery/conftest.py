"""One running eldric-cloudd (Daphne, the default server) with a fake backend of each kind behind it.

The fakes are real HTTP servers on 127.0.0.1 that replay recorded answers and, for the
translated kinds, refuse requests the real provider would refuse (``tests/fakes``). Every
battery test shares this one process, so the battery also proves that nothing before it
broke the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from aiohttp import web

from tests.cli_process import GatewayProcess
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import cohere as fake_cohere
from tests.fakes import ollama as fake_ollama
from tests.fakes import recordings
from tests.fakes.server import FakeProvider, openai_models, reply_bytes, reply_stream

# The daemon's own limits, small so oversized cases stay cheap and slow ones end quickly.
MAX_BODY_BYTES = 256 * 1024
HEADER_TIMEOUT = 2.0
BODY_IDLE_TIMEOUT = 2.0
ADMIN_TOKEN = "battery-admin-token-0123456789"

# Chat and embeddings model per backend kind (distinct names, so each routes to one kind).
CHAT_MODELS = {
    "openai_compatible": "gpt-4o",
    "anthropic": "claude-sonnet-4-5",
    "cohere": "command-a-03-2025",
    "ollama": "gemma3:1b",
}
EMBEDDING_MODELS = {
    "openai_compatible": "text-embedding-3-small",
    "cohere": "embed-v4.0",
    "ollama": "nomic-embed-text:latest",
}
KINDS = tuple(CHAT_MODELS)
# Upstream keys: shaped like real ones, so tests/conftest.py would also catch them in this process's logs.
KEYS = {"oai": "sk-battery-openai-0001", "claude": "sk-ant-battery-0002", "cohere": "battery-cohere-key-0003"}


@dataclass
class Battery:
    daemon: GatewayProcess
    fakes: dict[str, FakeProvider]

    @property
    def port(self) -> int:
        return self.daemon.port

    @property
    def url(self) -> str:
        return self.daemon.url

    def log_offset(self) -> int:
        return len(self.daemon.logs())

    def problems_since(self, offset: int) -> list[str]:
        """What is wrong with the daemon now: down, or a traceback or a key in its log past ``offset``.

        The log is read after ``alive()`` has its answer, which the server sends after the log
        lines of everything it handled before."""
        problems = [down] if (down := self.alive()) else []
        logs = self.daemon.logs()[offset:]
        at = logs.find("Traceback")
        if at >= 0:
            problems.append(
                "the daemon logged a traceback:\n" + logs[max(0, logs.rfind("\n", 0, at - 1) + 1) : at + 2000]
            )
        problems += [f"the daemon logged the key of {name}" for name, key in KEYS.items() if key in logs]
        return problems

    def alive(self) -> str | None:
        """None while the process runs and answers /health; else what is wrong."""
        if self.daemon.process.poll() is not None:
            return f"eldric-cloudd exited with {self.daemon.process.returncode}"
        try:
            status = self.daemon.get("/health", timeout=5).status_code
        except Exception as exc:
            return f"/health did not answer: {type(exc).__name__}: {exc}"
        return None if status == 200 else f"/health answered {status}"


def _by_stream_flag(whole, streamed):
    """``streamed`` for a request with ``"stream": true``, ``whole`` for any other."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())  # aiohttp keeps the body: ``inner`` reads it again
        except ValueError:
            body = None
        wants_stream = isinstance(body, dict) and body.get("stream") is True
        return await (streamed if wants_stream else whole)(request)

    return behaviour


def _ollama_chat():
    """Ollama's ``/api/chat``: the fake's checks, then the recorded transcript (whole or line by line)."""
    transcript = recordings.response("ollama", "native_chat_stream")
    lines = [line + b"\n" for line in transcript.splitlines() if line.strip()]
    streamed = reply_stream(lines, content_type="application/x-ndjson")
    whole = reply_bytes(json.dumps(fake_ollama.aggregate(transcript)).encode())

    async def behaviour(request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
            if not isinstance(body, dict):
                raise fake_ollama.Violation("body must be an object")
            fake_ollama.check_chat(body)
        except ValueError:
            return web.json_response({"error": "invalid JSON body"}, status=400)
        except fake_ollama.Violation as violation:
            return web.json_response({"error": str(violation)}, status=400)
        return await (streamed if body["stream"] else whole)(request)

    return behaviour


def _cohere_chat():
    whole = recordings.response("cohere", "v2_chat_simple_pydantic")
    streamed = reply_stream(recordings.sse_frames(recordings.response("cohere", "v2_chat_stream_text")))

    def answer(request: web.Request, body: dict):
        if body.get("stream") is True:
            return streamed(request)
        return web.Response(body=whole, content_type="application/json")

    return fake_cohere.validating(fake_cohere.check_chat, answer)


def _start_fakes() -> dict[str, FakeProvider]:
    openai = FakeProvider(name="oai").start()
    openai.on(
        "GET", "/v1/models", openai_models(CHAT_MODELS["openai_compatible"], EMBEDDING_MODELS["openai_compatible"])
    )
    openai_stream = reply_stream(recordings.sse_frames(recordings.response("openai", "chat_stream_text")))
    openai_whole = reply_bytes(recordings.response("openai", "chat_text"))
    openai.on("POST", "/v1/chat/completions", _by_stream_flag(openai_whole, openai_stream))
    openai.on("POST", "/v1/embeddings", reply_bytes(recordings.response("openai", "embeddings_dimensions")))

    claude = FakeProvider(name="claude").start()
    model = {
        "type": "model",
        "id": CHAT_MODELS["anthropic"],
        "display_name": "Claude",
        "created_at": "2025-09-29T00:00:00Z",
    }
    claude.on("GET", "/v1/models", fake_anthropic.models_pages([model]))
    claude_whole = fake_anthropic.recorded("messages_text")
    claude.on("POST", "/v1/messages", _by_stream_flag(claude_whole, fake_anthropic.recorded("messages_stream_text")))

    cohere = FakeProvider(name="cohere").start()
    cohere.on("GET", "/v1/models", fake_cohere.models())
    cohere.on("POST", "/v2/chat", _cohere_chat())
    cohere.on("POST", "/v2/embed", fake_cohere.embed(recordings.response("cohere", "v2_embed")))

    ollama = FakeProvider(name="ollama").start()
    ollama.on("GET", "/api/tags", fake_ollama.tags())
    ollama.on("POST", "/api/chat", _ollama_chat())
    ollama.on("POST", "/api/embed", fake_ollama.embed(recordings.response("ollama", "native_embed")))
    return {"openai_compatible": openai, "anthropic": claude, "cohere": cohere, "ollama": ollama}


@pytest.fixture(scope="package")
def battery(tmp_path_factory):
    fakes = _start_fakes()
    config = tmp_path_factory.mktemp("battery") / "cloudd.json"
    config.write_text(
        json.dumps(
            {
                "backends": [
                    {"name": "oai", "type": "openai_compatible", "url": fakes["openai_compatible"].url + "/v1",
                     "api_key": KEYS["oai"], "priority": 1},
                    {"name": "claude", "type": "anthropic", "url": fakes["anthropic"].url + "/v1",
                     "api_key": KEYS["claude"], "priority": 2},
                    {"name": "cohere", "type": "cohere", "url": fakes["cohere"].url,
                     "api_key": KEYS["cohere"], "priority": 3},
                    {"name": "ollama", "type": "ollama", "url": fakes["ollama"].url, "priority": 4},
                ]
            }
        )
    )  # fmt: skip
    daemon = GatewayProcess(
        config=config,
        env={
            "ELDRIC_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "ELDRIC_ADMIN_TOKEN": ADMIN_TOKEN,
            "ELDRIC_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "ELDRIC_BODY_IDLE_TIMEOUT": str(BODY_IDLE_TIMEOUT),
            "ELDRIC_LINGER_SECONDS": "1",
            # Nothing is in flight at the end; a connection the server lost track of must not hold the exit.
            "ELDRIC_DRAIN_SECONDS": "2",
            # Each case stands alone: a backend failing one case must not make later ones 503s.
            "ELDRIC_BREAKER_FAILURES": "1000000",
        },
    )
    try:
        daemon.start()
        models = set(daemon.models())
        expected = set(CHAT_MODELS.values()) | set(EMBEDDING_MODELS.values())
        if not expected <= models:
            raise AssertionError(f"discovery missed {sorted(expected - models)}:\n{daemon.logs()}")
        yield Battery(daemon, fakes)
    finally:
        daemon.stop()
        for fake in fakes.values():
            fake.stop()
