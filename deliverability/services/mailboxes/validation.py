"""A mailbox's values checked (address, daily limit, ports, security, host) and the checks
before an insert: the plan's mailbox limit and one mailbox per address.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from billing.entitlements import Resource, lock_usage, require_capacity
from deliverability.models import Mailbox, Security
from penguinmails.errors import ValidationFailed
from tenants.models import Tenant

# Cold outreach from one mailbox stays healthy at a few dozen a day; providers' own ceilings
# (Google Workspace 2,000/day, Microsoft 365 10,000/day) are far above what is safe to use.
DEFAULT_DAILY_LIMIT = 50
MAX_DAILY_LIMIT = 500


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _address(raw: str, field: str = "address") -> str:
    address = (raw or "").strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise _fail(field, "Enter an email address such as jane@example.com.") from None
    return address


def _daily_limit(raw: int | str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_DAILY_LIMIT
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_DAILY_LIMIT:
        raise _fail("daily_limit", f"The daily limit is a number from 1 to {MAX_DAILY_LIMIT}.")
    return value


def _port(raw: int | str | None, field: str) -> int:
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 65535:
        raise _fail(field, "Enter a port number from 1 to 65535.")
    return value


def _security(raw: str, field: str) -> str:
    if raw not in Security.values:
        raise _fail(field, "Choose SSL/TLS, STARTTLS or none.")
    return raw


def _host(raw: str, field: str) -> str:
    host = (raw or "").strip().lower().rstrip(".")
    if not host or len(host) > 253 or any(c.isspace() for c in host):
        raise _fail(field, "Enter the server's host name, such as smtp.gmail.com.")
    return host


def _require_capacity(tenant: Tenant) -> None:
    """The plan's mailbox limit, counted under the tenant row's lock (two requests adding the
    last allowed mailbox at once cannot both pass). Call inside a transaction."""
    lock_usage(tenant)
    require_capacity(tenant, Resource.MAILBOXES, in_use=Mailbox.objects.count(), adding=1)


def _refuse_duplicate(email: str) -> None:
    if Mailbox.objects.filter(address=email).exists():
        raise _fail("address", f"{email} is already one of your mailboxes.")


def _insert(mailbox: Mailbox) -> None:
    try:
        with transaction.atomic():
            mailbox.save(force_insert=True)
    except IntegrityError:  # a concurrent add of the same address won
        raise _fail("address", f"{mailbox.address} is already one of your mailboxes.") from None
