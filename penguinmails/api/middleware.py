"""Input every API request must pass before a view runs, answered in the API's error format.

- A body past DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, before anything reads it. Django raises
  RequestDataTooBig only once something reads `request.body`, and answers it with an HTML 400
  page. Multipart bodies are left to Django's parser (file parts do not count toward the limit,
  so a CSV import may be larger); their non-file parts past the limit get the same 413 from the
  exception handler.
- A NUL in the query string (`?q=%00`) is a 400 naming the parameter: PostgreSQL cannot compare
  text holding NUL, and several views hand query parameters straight to a service.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from penguinmails.api.errors import error_body
from penguinmails.api.jsonlimits import string_problem
from penguinmails.api.parsers import body_limit, too_large_message

API_PREFIX = "/api/"


def _too_large(request: HttpRequest) -> JsonResponse | None:
    limit = body_limit()
    if limit is None or request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= limit:
        return None
    return JsonResponse(error_body("request_too_large", too_large_message(limit)), status=413)


def _bad_query(request: HttpRequest) -> JsonResponse | None:
    if "%00" not in request.META.get("QUERY_STRING", ""):
        return None  # the only way a NUL gets into a decoded query string
    fields: dict[str, list[str]] = {}
    for name, values in request.GET.lists():
        key = "non_field_errors" if string_problem(name) else name
        for value in (name, *values):
            problem = string_problem(value)
            if problem:
                fields[key] = [problem]
    if not fields:
        return None
    return JsonResponse(error_body("validation_error", "Invalid input.", fields), status=400)


class ApiInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            refused = _too_large(request) or _bad_query(request)
            if refused is not None:
                return refused
        return self.get_response(request)
