"""The management API's JSON parser: bounded in size and nesting, and strict about strings.

Python's ``json`` recurses once per nesting level, so ``[[[[…`` 100k deep raises
RecursionError (a 500); a ``"\\ud800"`` escape decodes to a lone surrogate that neither
SQLite nor psycopg can store. Both are turned away here, before any view sees the data.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A JSON string literal; possessive, so a hostile body cannot make the regex backtrack.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# A "\ud800".."\udfff" escape: the only way a lone surrogate gets into decoded UTF-8 text.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes (ELDRIC_MAX_BODY_BYTES).")


class InvalidJsonString(exceptions.ParseError):
    """A string (or key) holds a lone UTF-16 surrogate, which no database can store."""

    default_code = "invalid_value"

    def __init__(self, param: str | None) -> None:
        where = f"{param}: " if param else ""
        super().__init__(f"{where}contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape).")
        self.param = param


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """True when arrays and objects in ``body`` nest deeper than ``limit``.

    Brackets inside strings do not count. Linear, and done in C for the most part: a
    20 MB hostile body takes about a second, an ordinary one microseconds.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return False
    if re.search(rb"[\[{]{%d}" % (limit + 1), brackets):
        return True
    return max(accumulate(map(_STEP.__getitem__, brackets))) > limit


def lone_surrogate_path(data, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of the first key or string holding a lone UTF-16 surrogate, or None."""
    if isinstance(data, str):
        return path if _has_surrogate(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            if _has_surrogate(key):
                return (*path, key)
            found = lone_surrogate_path(value, (*path, key))
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = lone_surrogate_path(value, (*path, str(index)))
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable_path(path: tuple[str, ...]) -> str:
    # The path may itself hold the surrogate; it must survive being encoded into the answer.
    return ".".join(path).encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(JSONParser):
    """``application/json`` only, at most ELDRIC_MAX_BODY_BYTES and ELDRIC_MAX_JSON_DEPTH deep."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.ELDRIC_MAX_BODY_BYTES
        # DRF hands over request.body, which Django already bounded by Content-Length
        # (DATA_UPLOAD_MAX_MEMORY_SIZE); this also covers a stream without one.
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(limit)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - not valid UTF-8 at byte {exc.start}") from None
        depth = settings.ELDRIC_MAX_JSON_DEPTH
        if nesting_exceeds(body, depth):
            raise ParseError(f"JSON parse error - nested deeper than {depth} levels")
        try:
            data = json.loads(body, parse_constant=_reject_constant)
        except RecursionError:
            # Unbalanced brackets the depth check let through; the parser went deep anyway.
            raise ParseError(f"JSON parse error - nested deeper than {depth} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _SURROGATE_ESCAPE.search(body):
            path = lone_surrogate_path(data)
            if path is not None:
                raise InvalidJsonString(printable_path(path) or None)
        return data
