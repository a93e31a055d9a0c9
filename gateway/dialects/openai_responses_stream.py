"""OpenAI ``chat.completion.chunk`` stream -> OpenAI Responses SSE events.

It reads what ``gateway.streaming`` relays (OpenAI chat SSE, cut anywhere: a passthrough
upstream's bytes or a translating adapter's frames). ``feed`` and ``close`` never raise:
whatever arrives ends, at worst, in an ``error`` event and ``response.failed``.

The order the official SDK's ``responses.stream()`` checks: ``response.created`` first, then
``response.in_progress``; per output item ``response.output_item.added``, for a message
``response.content_part.added``, its ``response.output_text.delta`` events,
``response.output_text.done`` and ``response.content_part.done``, for a function call its
``response.function_call_arguments.delta`` events and ``.done``; ``response.output_item.done``;
and last ``response.completed`` (or ``response.incomplete``) with the usage, which OpenAI sends
in a chunk after the one with ``finish_reason``, so the end waits for ``[DONE]``. Every event
carries a ``sequence_number``.
"""

from __future__ import annotations

import json

from backends.providers.base import OpenAIError
from gateway.dialects.chat_stream import ChatChunkReader, text_of
from gateway.dialects.openai_responses_answer import (
    INCOMPLETE,
    ResponseShell,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    responses_usage,
)


class ChatToResponsesStream(ChatChunkReader):
    """One per stream. ``output`` and ``usage`` (chat-shaped) are known once it ended,
    for the store and the gateway's accounting; ``completed`` says whether it ended well."""

    answer_noun = "response"
    upstream_error_status = 502

    def __init__(self, shell: ResponseShell) -> None:
        super().__init__()
        self.shell = shell
        self.output: list[dict] = []
        self.completed = False
        self._sequence = 0
        self._started = False
        # The open item: its kind ("reasoning", "message" or ("tool", chat index)), output index,
        # id and the text or arguments so far.
        self._open: tuple | None = None
        self._open_index = -1
        self._open_id = ""
        self._open_text: list[str] = []
        # chat tool_calls index -> (output index, item id, call id, name, argument parts).
        self._tools: dict[int, tuple[int, str, str, str, list[str]]] = {}

    # --- events -------------------------------------------------------------------------------
    def _event(self, name: str, data: dict, out: list[bytes]) -> None:
        data = {"type": name, **data, "sequence_number": self._sequence}
        self._sequence += 1
        out.append(b"event: " + name.encode() + b"\ndata: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")

    def _start(self, chunk: dict, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        self._event("response.created", {"response": self.shell.response("in_progress", [])}, out)
        self._event("response.in_progress", {"response": self.shell.response("in_progress", [])}, out)

    def _reasoning_delta(self, text: str, out: list[bytes]) -> None:
        self._text_delta("reasoning", text, out)

    def _content_delta(self, text: str, out: list[bytes]) -> None:
        self._text_delta("message", text, out)

    def _finished(self, out: list[bytes]) -> None:
        self._close_item(out)

    def _open_item(self, kind, item: dict, out: list[bytes]) -> None:
        self._close_item(out)
        self._open, self._open_index, self._open_id, self._open_text = kind, len(self.output), item["id"], []
        self.output.append(item)
        self._event("response.output_item.added", {"output_index": self._open_index, "item": item}, out)

    def _text_delta(self, kind: str, text: str, out: list[bytes]) -> None:
        where = {"item_id": self._open_id, "output_index": self._open_index, "content_index": 0}
        if self._open != kind:
            if kind == "message":
                item = message_item(new_id("msg"), "", status="in_progress")
                item["content"] = []
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            else:
                item = reasoning_item(new_id("rs"), "", status="in_progress")
                item["content"] = []
                part = {"type": "reasoning_text", "text": ""}
            self._open_item(kind, item, out)
            where = {"item_id": self._open_id, "output_index": self._open_index, "content_index": 0}
            self._event("response.content_part.added", {**where, "part": part}, out)
        self._open_text.append(text)
        if kind == "message":
            self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []}, out)
        else:
            self._event("response.reasoning_text.delta", {**where, "delta": text}, out)

    def _tool_delta(self, call: dict, position: int, out: list[bytes]) -> None:
        tool = call.get("index")
        if isinstance(tool, bool) or not isinstance(tool, int):
            tool = position
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if tool not in self._tools:
            call_id = text_of(call.get("id")) or new_id("call")
            item = function_call_item(new_id("fc"), call_id, text_of(function.get("name")), "", status="in_progress")
            self._open_item(("tool", tool), item, out)
            self._tools[tool] = (self._open_index, item["id"], call_id, item["name"], [])
        index, item_id, _, _, parts = self._tools[tool]
        arguments = text_of(function.get("arguments"))
        if arguments:
            parts.append(arguments)
            delta = {"item_id": item_id, "output_index": index, "delta": arguments}
            self._event("response.function_call_arguments.delta", delta, out)

    def _close_item(self, out: list[bytes]) -> None:
        kind = self._open
        if kind is None:
            return
        self._open = None
        index, item_id = self._open_index, self._open_id
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        if kind == "message":
            text = "".join(self._open_text)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []}, out)
            self._event("response.content_part.done", {**where, "part": part}, out)
            item = message_item(item_id, text)
        elif kind == "reasoning":
            text = "".join(self._open_text)
            self._event("response.reasoning_text.done", {**where, "text": text}, out)
            self._event("response.content_part.done", {**where, "part": {"type": "reasoning_text", "text": text}}, out)
            item = reasoning_item(item_id, text)
        else:
            _, _, call_id, name, parts = self._tools[kind[1]]
            arguments = "".join(parts)
            done = {"item_id": item_id, "output_index": index, "name": name, "arguments": arguments}
            self._event("response.function_call_arguments.done", done, out)
            item = function_call_item(item_id, call_id, name, arguments)
        self.output[index] = item
        self._event("response.output_item.done", {"output_index": index, "item": item}, out)

    # --- ends ---------------------------------------------------------------------------------
    def _complete(self, out: list[bytes]) -> None:
        self._start({}, out)
        self._close_item(out)
        usage = responses_usage(self.usage)
        reason = INCOMPLETE.get(self._finish)
        if reason is None:
            response = self.shell.response("completed", self.output, usage)
            self._event("response.completed", {"response": response}, out)
        else:
            response = self.shell.response("incomplete", self.output, usage, incomplete_details={"reason": reason})
            self._event("response.incomplete", {"response": response}, out)
        self.completed = True
        self._ended = True

    def _fail(self, error: OpenAIError, out: list[bytes]) -> None:
        self._start({}, out)
        body = error.as_dict()["error"]
        code = body["code"] if isinstance(body["code"], str) else body["type"]
        self._event("error", {"code": code, "message": body["message"], "param": body["param"]}, out)
        failed = self.shell.response("failed", self.output, responses_usage(self.usage))
        failed["error"] = {"code": "server_error", "message": body["message"]}
        self._event("response.failed", {"response": failed}, out)
        self._ended = True
