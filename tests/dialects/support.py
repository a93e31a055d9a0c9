"""Reading Anthropic SSE the way Anthropic's SDKs do, strictly: an event out of order fails the test."""

from __future__ import annotations

import json

from tests.fakes import recordings


def events(body: bytes) -> list[tuple[str, dict]]:
    """``(event name, data)`` pairs of an Anthropic SSE body; the name must match the data's type."""
    parsed = []
    for frame in recordings.sse_frames(body):
        name, data = None, []
        for line in frame.decode().splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if not data:
            continue
        value = json.loads("\n".join(data))
        assert name == value["type"], frame
        parsed.append((name, value))
    return parsed


def accumulate(body: bytes) -> dict:
    """The final message of a stream, built as ``anthropic``'s ``MessageStream`` builds it.

    Checks Anthropic's grammar on the way: one ``message_start`` first; blocks started in index
    order, deltas only to started blocks of their kind, each stopped once; then ``message_delta``
    and ``message_stop`` last. An ``error`` event ends the stream and is returned as ``error``.
    """
    message = None
    open_blocks: set[int] = set()
    stopped: set[int] = set()
    json_parts: dict[int, str] = {}
    finished = False
    for name, data in events(body):
        assert not finished, f"{name} after message_stop"
        if name == "ping":
            continue
        if name == "error":
            return {"error": data["error"], "partial": message}
        if name == "message_start":
            assert message is None, "two message_start events"
            message = dict(data["message"], content=[])
            continue
        assert message is not None, f"{name} before message_start"
        if name == "content_block_start":
            index = data["index"]
            assert index == len(message["content"]), "blocks must start in index order"
            message["content"].append(dict(data["content_block"]))
            open_blocks.add(index)
        elif name == "content_block_delta":
            index, delta = data["index"], data["delta"]
            assert index in open_blocks or index in stopped, f"delta for unknown block {index}"
            block = message["content"][index]
            if delta["type"] == "text_delta":
                assert block["type"] == "text"
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                assert block["type"] == "tool_use"
                json_parts[index] = json_parts.get(index, "") + delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                assert block["type"] == "thinking"
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
        elif name == "content_block_stop":
            index = data["index"]
            assert index in open_blocks, f"stop for a block that is not open: {index}"
            open_blocks.discard(index)
            stopped.add(index)
        elif name == "message_delta":
            assert not open_blocks, "message_delta with blocks still open"
            message.update(data["delta"])
            message["usage"] = {**message["usage"], **{k: v for k, v in data["usage"].items() if v is not None}}
        elif name == "message_stop":
            finished = True
    assert finished, "the stream did not end with message_stop"
    for index, text in json_parts.items():
        message["content"][index]["input"] = json.loads(text) if text else {}
    return message


def content_summary(message: dict) -> list[tuple]:
    """What a client reads of a message's content: (type, text / name and input / thinking)."""
    summary = []
    for block in message["content"]:
        if block["type"] == "text":
            summary.append(("text", block["text"]))
        elif block["type"] == "tool_use":
            summary.append(("tool_use", block["id"], block["name"], block["input"]))
        elif block["type"] == "thinking":
            summary.append(("thinking", block["thinking"]))
        else:
            summary.append((block["type"],))
    return summary
