"""Domain exceptions. Services raise these; the API, views and commands map them to responses.

One place decides how each looks to a user: `penguinmails.api.errors` for HTTP (status + the one
error format), management commands print the message and exit non-zero.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused business operation, with a message fit to show to the user."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(DomainError):
    status_code = 400
    code = "validation_error"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class TenantSuspended(DomainError):
    status_code = 423
    code = "tenant_suspended"


class IllegalTransition(DomainError):
    status_code = 409
    code = "illegal_transition"
