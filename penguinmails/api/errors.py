"""The API's one error format, for every refusal from authentication to validation:

    {"error": {"code": "validation_error", "message": "Invalid input.",
               "fields": {"name": ["This field is required."]}}}

`fields` appears only when specific inputs were wrong. Domain exceptions (penguinmails.errors)
carry their own status and code; DRF's and Django's exceptions are translated here.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from penguinmails.errors import DomainError

# Headers DRF sets on error responses that a client needs (how to authenticate, when to retry,
# which methods exist); everything else is rebuilt by the new response.
_KEPT_HEADERS = ("WWW-Authenticate", "Retry-After", "Allow")


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error detail as {"field" or "parent.child": [messages]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{key}.{sub}"] = msgs
            elif isinstance(value, list):
                out[str(key)] = [str(v) for v in value]
            else:
                out[str(key)] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(
    code: str,
    message: str,
    http_status: int,
    fields: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(error_body(code, message, fields), status=http_status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled exception leaves in the one format."""
    if isinstance(exc, DomainError):
        return error_response(exc.code, exc.message, exc.status_code, exc.fields or None)
    if isinstance(exc, RequestDataTooBig):  # a multipart body's non-file parts past the limit
        return error_response(
            "request_too_large",
            "The request body is too large.",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):  # e.g. too many fields; Django would answer HTML
        return error_response(
            "bad_request", str(exc) or "Bad request.", status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        # A delete that other rows still point at (a campaign with sent messages, say): the
        # object stays, and the client is told why instead of getting a 500.
        return error_response(
            "in_use",
            "It is still in use by other records and cannot be deleted.",
            status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: a 500, logged by Django
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    if isinstance(exc, exceptions.ValidationError):
        return error_response(
            "validation_error",
            "Invalid input.",
            status.HTTP_400_BAD_REQUEST,
            _flatten(exc.detail),
            headers=headers,
        )
    assert isinstance(exc, exceptions.APIException)
    code = exc.default_code
    if isinstance(exc.detail, dict | list):
        return error_response(
            code, "Invalid request.", response.status_code, _flatten(exc.detail), headers=headers
        )
    return error_response(code, str(exc.detail), response.status_code, headers=headers)


@csrf_exempt  # a POST to an unknown path is a 404, not Django's HTML CSRF page
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/v1/ answer in the API's format, not with an HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
