"""Limits on JSON input: nesting depth, encoded size, and strings PostgreSQL cannot store.

PostgreSQL refuses NUL (U+0000) in text and jsonb, and a lone surrogate (`"\\ud800"`, valid JSON
but not encodable as UTF-8) fails on the way to the database; both used to reach it and answer
500. Python's json module raises RecursionError (not ValueError) on deeply nested input. Every
JSON body (penguinmails.api.parsers) and every JSON-valued serializer field
(penguinmails.api.fields) is checked here, so the answer is a 400 naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework import exceptions, status

# A whole request body: deep enough for any document the API defines, shallow enough that
# walking it (and json's own recursion) stays cheap.
MAX_BODY_DEPTH = 32
# One JSON-valued field (custom fields, settings blobs) unless the field says otherwise.
MAX_FIELD_DEPTH = 8
MAX_FIELD_BYTES = 64 * 1024

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
# Strings and brackets of a JSON text, for finding where it nests too deep without parsing it.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"\s*:?|[\[\]{}]')


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


def string_problem(value: str) -> str | None:
    """Why PostgreSQL could not store `value`, or None."""
    found = _BAD_CHARS.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "Null characters are not allowed."
    return "Unpaired surrogate characters (\\ud800-\\udfff) are not allowed."


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def find_problem(value: Any, *, max_depth: int, path: str = "") -> tuple[str, str] | None:
    """The first (path, message) that makes `value` unacceptable, or None.

    Iterative, so an input nested past Python's recursion limit is reported, not raised. A depth
    error names the path down to the limit.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = string_problem(item)
            if problem:
                return where or "non_field_errors", problem
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= max_depth:
            return where or "non_field_errors", f"Nested deeper than {max_depth} levels."
        if isinstance(item, dict):
            for key, child in item.items():
                problem = string_problem(str(key))
                if problem:
                    return where or "non_field_errors", f"A key: {problem}"
                stack.append((child, _join(where, key), depth + 1))
        else:
            stack.extend((child, _join(where, i), depth + 1) for i, child in enumerate(item))
    return None


def check(value: Any, *, max_depth: int = MAX_BODY_DEPTH, path: str = "") -> None:
    """Raise the API's 400 naming the field when `value` breaks a limit."""
    problem = find_problem(value, max_depth=max_depth, path=path)
    if problem is not None:
        where, message = problem
        raise exceptions.ValidationError({where: [message]})


def _too_deep_path(text: str, max_depth: int) -> str:
    """The object keys leading to where `text` nests past `max_depth` (best effort)."""
    keys: list[str | None] = []
    pending: str | None = None
    for token in _TOKENS.finditer(text):
        tok = token.group()
        if tok in "[{":
            keys.append(pending)
            pending = None
            if len(keys) > max_depth:
                break
        elif tok in "]}":
            if keys:
                keys.pop()
        elif tok.endswith(":"):
            pending = json.loads(tok.rstrip(" \t\r\n:"))
    named = [k for k in keys[1 : max_depth + 1] if k is not None]
    return ".".join(named[:3]) or "non_field_errors"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes, *, max_depth: int = MAX_BODY_DEPTH, path: str = "") -> Any:
    """json.loads with the limits above; malformed or unacceptable input is a 400."""
    try:
        # NaN and Infinity are not JSON (DRF's STRICT_JSON refuses them too).
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        decoded = text if isinstance(text, str) else text.decode("utf-8", "replace")
        where = _too_deep_path(decoded, max_depth)
        where = _join(path, where) if path and where != "non_field_errors" else path or where
        raise exceptions.ValidationError(
            {where: [f"Nested deeper than {max_depth} levels."]}
        ) from None
    except ValueError as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    check(value, max_depth=max_depth, path=path)
    return value
