"""Refuses an API request body past DATA_UPLOAD_MAX_MEMORY_SIZE before anything reads it.

Django raises RequestDataTooBig only once something reads `request.body`, and answers it with an
HTML 400 page; under /api/ a client gets the API's JSON 413 instead, without the body being read.
Multipart bodies are left to Django's parser (file parts do not count toward the limit, so a CSV
import may be larger); their non-file parts past the limit get the same 413 from the exception
handler.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from penguinmails.api.errors import error_body
from penguinmails.api.parsers import body_limit, too_large_message

API_PREFIX = "/api/"


class ApiBodySizeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit()
        if limit is not None and request.path.startswith(API_PREFIX):
            content_type = request.META.get("CONTENT_TYPE", "")
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit and not content_type.startswith("multipart/form-data"):
                return JsonResponse(
                    error_body("request_too_large", too_large_message(limit)), status=413
                )
        return self.get_response(request)
