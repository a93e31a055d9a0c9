"""Checks the translating adapters apply to client fields while they read them.

Each helper takes the value and the dotted ``param`` path OpenAI would name (``tools[0].function``)
and returns the value, or raises ``InvalidRequestError`` naming that path, which the gateway turns
into a 400. ``None`` means "not sent" unless ``required`` is set. Strings are not scanned for lone
surrogates here: that would walk the payload twice. ``encode_body`` finds them only when encoding
the upstream body fails, so the hot path pays nothing.
"""

from __future__ import annotations

import json
import math

from backends.providers.base import InvalidRequestError

# Integer fields are capped where upstreams (Go, Rust, Java servers) would overflow a signed 64-bit int.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
    type(None): "null",
}


def kind(value) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def invalid(param: str, expected: str, value) -> InvalidRequestError:
    return InvalidRequestError(f"'{param}' must be {expected}, got {kind(value)}", param)


def string(value, param: str, *, required: bool = False, nonempty: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (nonempty and not value):
        raise invalid(param, "a non-empty string" if nonempty else "a string", value)
    return value


def boolean(value, param: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise invalid(param, "a boolean", value)


def integer(value, param: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(param, "an integer", value)
    if not minimum <= value <= maximum:
        raise InvalidRequestError(f"'{param}' must be between {minimum} and {maximum}", param)
    return value


def number(value, param: str, *, minimum: float, maximum: float) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(param, "a number", value)
    # ``NaN``/``Infinity`` parse from JSON in Python but no upstream accepts them.
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequestError(f"'{param}' must be a finite number", param)
    if not minimum <= value <= maximum:
        raise InvalidRequestError(f"'{param}' must be between {minimum} and {maximum}", param)
    return value


def mapping(value, param: str, *, required: bool = False) -> dict | None:
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise invalid(param, "an object", value)
    return value


def array(value, param: str, *, required: bool = False) -> list | None:
    if value is None and not required:
        return None
    if not isinstance(value, list):
        raise invalid(param, "an array", value)
    return value


def choice(value, param: str, allowed) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise InvalidRequestError(f"'{param}' must be one of {', '.join(sorted(allowed))}", param)
    return value


def stop_sequences(value, param: str = "stop") -> list[str]:
    """OpenAI ``stop``: a string or an array of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid(param, "a string or an array of strings", value)
    for index, item in enumerate(value):
        string(item, f"{param}[{index}]", required=True)
    return value


def include_usage(payload: dict) -> bool:
    """``stream_options.include_usage``, validated."""
    options = mapping(payload.get("stream_options"), "stream_options")
    if options is None:
        return False
    return boolean(options.get("include_usage"), "stream_options.include_usage") is True


def max_tokens(payload: dict) -> int | None:
    """``max_completion_tokens`` (preferred) or ``max_tokens``: a positive integer."""
    limit = integer(payload.get("max_completion_tokens"), "max_completion_tokens", minimum=1)
    fallback = integer(payload.get("max_tokens"), "max_tokens", minimum=1)
    return limit if limit is not None else fallback


def chat_basics(payload) -> tuple[str, list]:
    """The fields every chat translation needs: the payload itself, ``model`` and ``messages``."""
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"the request body must be a JSON object, got {kind(payload)}")
    model = string(payload.get("model"), "model", required=True, nonempty=True)
    messages = array(payload.get("messages"), "messages", required=True)
    boolean(payload.get("stream"), "stream")
    return model, messages


def encode_body(body: dict, payload: dict) -> bytes:
    """The upstream body as UTF-8 JSON; a client string that cannot be encoded is a 400 naming it."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except UnicodeEncodeError:
        param = unencodable_path(payload)
        raise InvalidRequestError(
            f"'{param or 'the request'}' contains a lone UTF-16 surrogate, which is not valid Unicode", param
        ) from None
    except RecursionError:
        param = deepest_field(payload)
        raise InvalidRequestError(f"'{param or 'the request'}' is nested too deeply", param) from None
    except ValueError:  # NaN or Infinity in a field copied as it is
        raise InvalidRequestError("the request contains NaN or Infinity, which JSON cannot carry") from None


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unencodable_path(value, prefix: str = "") -> str | None:
    """The dotted path of the first string (or object key) with a lone surrogate, in document order."""
    stack = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return path or None
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and not _encodable(key):
                    return path or None
                children.append((f"{path}.{key}" if path else str(key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


def deepest_field(payload: dict) -> str | None:
    """The top-level field with the deepest nesting (iteratively: it may be too deep to recurse)."""
    best, best_depth = None, -1
    for key, value in payload.items():
        depth, stack = 0, [(value, 1)]
        while stack:
            item, level = stack.pop()
            depth = max(depth, level)
            if isinstance(item, dict):
                stack.extend((child, level + 1) for child in item.values())
            elif isinstance(item, list):
                stack.extend((child, level + 1) for child in item)
        if depth > best_depth:
            best, best_depth = key, depth
    return best if isinstance(best, str) else None
