"""A lead's values checked and normalised: the address, text fields, custom fields and tags."""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from email_validator import EmailNotValidError, validate_email

from campaigns.models import LEAD_FIELDS, Lead

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_VALUE = 1000
MAX_TAGS = 30
_CUSTOM_KEY = re.compile(r"^[a-z0-9_]{1,64}$")
_TAG_SPLIT = re.compile(r"[,;|]")
TEXT_FIELDS: dict[str, int] = {  # field -> max length (the model's), first_name ... timezone
    f.name: f.max_length or 0
    for f in Lead._meta.concrete_fields
    if f.name in LEAD_FIELDS and f.name != "email"
}
# Addresses that reach a function or a team, not a person: flagged (they reply less and
# complain more), still imported.
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse", "accounts", "admin", "billing", "careers", "contact", "enquiries", "help",
        "hello", "hostmaster", "hr", "info", "inquiries", "jobs", "marketing", "media",
        "no-reply", "noreply", "office", "postmaster", "press", "privacy", "sales", "security",
        "support", "team", "webmaster",
    }
)  # fmt: skip
# A small list of throwaway-mailbox services, flagged. Not exhaustive by design: it catches the
# common ones without a network call.
DISPOSABLE_DOMAINS = frozenset(
    {
        "10minutemail.com", "discard.email", "dispostable.com", "fakeinbox.com",
        "getnada.com", "guerrillamail.com", "guerrillamail.net", "maildrop.cc", "mailinator.com",
        "mailnesia.com", "mintemail.com", "mohmal.com", "sharklasers.com", "temp-mail.org",
        "tempmail.com", "tempmailo.com", "throwawaymail.com", "trashmail.com", "yopmail.com",
        "yopmail.net",
    }
)  # fmt: skip


@dataclass
class LeadInput:
    """A validated lead: lower-cased address, text fields, custom fields, tags and flags."""

    email: str
    fields: dict[str, str] = field(default_factory=dict)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    is_role_address: bool = False
    is_disposable: bool = False
    mx_ok: bool | None = None

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


# The common plain-ASCII address, checked without email-validator (about 20 times faster, which
# matters for a million-row import). It accepts a strict subset of what email-validator accepts
# (tests/leads/test_email_fast_path.py compares the two on generated addresses): a dot-atom
# local part of letters, digits and `_%+-`; a host name of LDH labels (none with `--`, so no
# Punycode or the `ab--` labels IDNA refuses) under a TLD of letters that is not a special-use
# name (`.test` is one only while settings.ALLOW_TEST_EMAIL_DOMAINS is off); and the length
# limits. Everything else goes to email-validator, which also words the reasons.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
    re.ASCII | re.IGNORECASE,
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
_SPECIAL_USE_TLDS_BUT_TEST = _SPECIAL_USE_TLDS - {"test"}


def allows_test_domains() -> bool:
    """Whether `.test` addresses are leads here: settings.ALLOW_TEST_EMAIL_DOMAINS (on with the
    sandbox, which captures all mail; off in production). email-validator's `test_environment`."""
    return bool(settings.ALLOW_TEST_EMAIL_DOMAINS)


def plain_email(raw: str) -> str | None:
    """The lower-cased address when `raw` (already stripped) is a plain ASCII address that
    email-validator would accept and normalise to the same value; None to ask email-validator."""
    if len(raw) > 254 or not _PLAIN_EMAIL.fullmatch(raw):
        return None
    local, _, domain = raw.lower().rpartition("@")
    refused = _SPECIAL_USE_TLDS_BUT_TEST if allows_test_domains() else _SPECIAL_USE_TLDS
    if len(local) > 64 or "--" in domain or domain.rpartition(".")[2] in refused:
        return None
    return f"{local}@{domain}"


def normalize_email(raw: str) -> str:
    """The address lower-cased in its normalised form, or ValueError with the reason."""
    raw = raw.strip()
    fast = plain_email(raw)
    if fast is not None:
        return fast
    try:
        checked = validate_email(
            raw, check_deliverability=False, test_environment=allows_test_domains()
        )
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return checked.normalized.lower()


def normalize_tags(raw: object) -> list[str]:
    """Tags from a list or a `a, b; c` string: trimmed, lower-case, unique, in order."""
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        parts = _TAG_SPLIT.split(raw)
    elif isinstance(raw, list | tuple) and all(isinstance(t, str) for t in raw):
        parts = list(raw)
    else:
        raise ValueError("Tags are a list of strings.")
    tags = list(dict.fromkeys(t.strip().lower() for t in parts if t.strip()))
    if any(len(t) > 64 for t in tags):
        raise ValueError("A tag is at most 64 characters.")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"At most {MAX_TAGS} tags.")
    return tags


@functools.cache
def _time_zones() -> frozenset[str]:
    # available_timezones() walks the tz database on every call: once per process is enough.
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(raw: str) -> str:
    name = raw.strip()
    if not name:
        return ""
    if name not in _time_zones():
        raise ValueError(f"Unknown time zone {name!r}; use an IANA name such as Europe/Paris.")
    return name


def clean_lead(raw: dict[str, Any], *, partial: bool = False) -> tuple[LeadInput | None, dict]:
    """Validate one lead given as {email, first_name..., custom_fields: {}, tags}.

    Returns (lead, {}) or (None, {field: [messages]}). With `partial`, a missing email is fine
    (an update) and the returned lead has email "".
    """
    errors: dict[str, list[str]] = {}
    email = ""
    raw_email = raw.get("email")
    if raw_email in (None, "") and not partial:
        errors["email"] = ["An email address is required."]
    elif raw_email not in (None, ""):
        if not isinstance(raw_email, str):
            errors["email"] = ["Not a string."]
        else:
            try:
                email = normalize_email(raw_email)
            except ValueError as exc:
                errors["email"] = [str(exc)]
    fields = _clean_text_fields(raw, errors)
    custom = _clean_custom_fields(raw.get("custom_fields") or {}, errors)
    tags: list[str] = []
    try:
        tags = normalize_tags(raw.get("tags"))
    except ValueError as exc:
        errors["tags"] = [str(exc)]
    if errors:
        return None, errors
    local, _, domain = email.rpartition("@")
    return (
        LeadInput(
            email=email,
            fields=fields,
            custom_fields=dict(custom),
            tags=tags,
            is_role_address=local in ROLE_LOCAL_PARTS,
            is_disposable=domain in DISPOSABLE_DOMAINS,
        ),
        {},
    )


def _clean_text_fields(raw: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, str]:
    """`clean_lead`'s text fields (first_name ... timezone): the valid ones, trimmed; a
    problem with any other is added to `errors`."""
    fields: dict[str, str] = {}
    for name, limit in TEXT_FIELDS.items():
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors[name] = ["Not a string."]
            continue
        value = value.strip()
        if len(value) > limit:
            errors[name] = [f"At most {limit} characters."]
            continue
        if name == "timezone":
            try:
                value = validate_timezone(value)
            except ValueError as exc:
                errors[name] = [str(exc)]
                continue
        fields[name] = value
    return fields


def _clean_custom_fields(custom: object, errors: dict[str, list[str]]) -> dict[str, Any]:
    """`clean_lead`'s custom fields as given ({} if not an object); a problem (the last one
    found) is added to `errors`."""
    if not isinstance(custom, dict):
        errors["custom_fields"] = ["An object of field names to values."]
        return {}
    if len(custom) > MAX_CUSTOM_FIELDS:
        errors["custom_fields"] = [f"At most {MAX_CUSTOM_FIELDS} custom fields."]
        return custom
    for key, value in custom.items():
        if not _CUSTOM_KEY.match(str(key)):
            errors["custom_fields"] = [f"{key!r}: names use a-z, 0-9 and _ (64 at most)."]
        elif not isinstance(value, str | int | float | bool) and value is not None:
            errors["custom_fields"] = [f"{key}: a text, number or true/false value."]
        elif isinstance(value, str) and len(value) > MAX_CUSTOM_VALUE:
            errors["custom_fields"] = [f"{key}: at most {MAX_CUSTOM_VALUE} characters."]
    return custom


def _reason(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())[:500]
