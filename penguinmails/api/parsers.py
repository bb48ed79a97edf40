"""The API's JSON parser: DRF's, with a size limit and the checks of penguinmails.api.jsonlimits.

Every JSON body is checked before any view sees it, including views that hand `request.data` to a
service without a serializer: NUL and lone surrogates anywhere, nesting past MAX_BODY_DEPTH, and a
body past DATA_UPLOAD_MAX_MEMORY_SIZE (413) are refused in the API's error format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from penguinmails.api import jsonlimits


def body_limit() -> int | None:
    """Most bytes a non-file request body may have (Django's own setting; None: no limit)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_message(limit: int) -> str:
    return f"The request body is larger than {limit:,} bytes."


class LimitedJSONParser(JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = body_limit()
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise jsonlimits.RequestTooLarge(too_large_message(limit))
        try:
            text = raw.decode(settings.DEFAULT_CHARSET)
        except UnicodeDecodeError:
            raise ParseError(f"The body is not valid {settings.DEFAULT_CHARSET}.") from None
        return jsonlimits.loads(text)
