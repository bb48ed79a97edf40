"""Leads, lists, suppressions and CSV imports (docs/leads.md).

Every function runs in the tenant's schema (dashboard and API on the tenant's host, the import
job through the queue runner, commands inside `schema_context`). Writes are atomic and audited.

One write path for every way leads arrive: `_write_batch` takes validated rows and creates,
updates or skips them (the import job in batches, the bulk API in one). An address is stored
lower-cased and unique, so the tenant has one lead per mailbox whatever the case. Suppressed
addresses (or domains) are never created or updated.

An import is a `LeadImport` plus the job `leads.import`: the job counts the rows, then streams
the file in batches of `LEAD_IMPORT_BATCH_SIZE`; each batch commits its leads, its failed rows
and the counts together, under a lock on the import row that checks `processed` is still where
this run left it. So a re-run (a worker killed, the job re-queued) resumes after the last
committed batch, and two runs at once cannot both count a batch.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import dns.exception
import dns.resolver
from django.conf import settings
from django.core.files.base import File
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_tenants.utils import schema_context
from email_validator import EmailNotValidError, validate_email

from campaigns.imports import (
    UnusableFile,
    check_mapping,
    default_mapping,
    read_shape,
)
from campaigns.models import (
    LEAD_FIELDS,
    DuplicatePolicy,
    ImportStatus,
    Lead,
    LeadImport,
    LeadList,
    LeadStatus,
    Suppression,
    SuppressionReason,
)
from deliverability.dns.verify import resolver_from_settings
from penguinmails import csvsafe
from penguinmails.errors import Conflict, NotFound, ValidationFailed
from penguinmails.models import Job
from penguinmails.queue.producer import enqueue
from tenants.db import current_schema, require_schema
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

IMPORT_TASK = "leads.import"
BULK_LIMIT = 1000
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_VALUE = 1000
MAX_TAGS = 30
_MX_CACHE_LIMIT = 10_000
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


class ImportTakenOver(Exception):
    """Another run of the same import committed a batch this run was about to write."""


# --- validation -----------------------------------------------------------------------------------
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


class MxChecker:
    """Whether a domain can receive mail, asked of `DNS_RESOLVERS` once per domain per run.

    True: MX records (or, without any, an address record: RFC 5321's implicit MX). False: the
    domain does not exist, has no mail host, or publishes a null MX. None: DNS did not answer.
    """

    def __init__(self) -> None:
        self.resolver = resolver_from_settings()
        self.cache: dict[str, bool | None] = {}

    def __call__(self, domain: str) -> bool | None:
        if domain not in self.cache:
            if len(self.cache) >= _MX_CACHE_LIMIT:
                self.cache.clear()
            self.cache[domain] = self._ask(domain)
        return self.cache[domain]

    def _ask(self, domain: str) -> bool | None:
        try:
            answer = self.resolver.resolve(domain, "MX", raise_on_no_answer=False)
            hosts = [r.exchange.to_text().rstrip(".") for r in answer] if answer.rrset else []
            if hosts:
                return hosts != [""]  # `MX 0 .` is RFC 7505's "no mail here"
            address = self.resolver.resolve(domain, "A", raise_on_no_answer=False)
            return bool(address.rrset)
        except dns.resolver.NXDOMAIN:
            return False
        except dns.exception.DNSException:
            return None


# --- the one write path --------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What happened to one input: created, updated, skipped (reason) or failed (errors)."""

    status: str
    lead_id: int | None = None
    reason: str = ""
    errors: dict[str, list[str]] | None = None


def suppressed_among(emails: Iterable[str]) -> dict[str, str]:
    """{address: reason} for the addresses suppressed themselves or by their domain."""
    emails = set(emails)
    if not emails:
        return {}
    domains = {e.rpartition("@")[2] for e in emails}
    rows = Suppression.objects.filter(value__in=emails | domains).values_list(
        "value", "is_domain", "reason"
    )
    by_value = {value: (is_domain, reason) for value, is_domain, reason in rows}
    found: dict[str, str] = {}
    for email in emails:
        hit = by_value.get(email) or by_value.get(email.rpartition("@")[2])
        if hit is not None:
            label = SuppressionReason(hit[1]).label.lower()
            found[email] = f"suppressed {'domain' if hit[0] else 'address'} ({label})"
    return found


_UPDATABLE = [
    *TEXT_FIELDS,
    "custom_fields",
    "tags",
    "is_role_address",
    "is_disposable",
    "mx_ok",
    "updated_at",
]


def _merge(lead: Lead, data: LeadInput) -> None:
    """Fill a lead from a later row: non-empty values win, custom fields merge, tags add up."""
    for name, value in data.fields.items():
        if value:
            setattr(lead, name, value)
    lead.custom_fields = {**lead.custom_fields, **data.custom_fields}
    lead.tags = list(dict.fromkeys([*lead.tags, *data.tags]))
    lead.is_role_address = data.is_role_address
    lead.is_disposable = data.is_disposable
    if data.mx_ok is not None:
        lead.mx_ok = data.mx_ok


def _write_batch(
    inputs: list[LeadInput], *, duplicates: str, lead_list: LeadList | None
) -> list[Outcome]:
    """Create, update or skip each input (in order; a repeated address within the batch is a
    duplicate of its first row). Call inside a transaction. Suppressed addresses are skipped."""
    emails = {i.email for i in inputs}
    existing = {lead.email: lead for lead in Lead.objects.filter(email__in=emails)}
    suppressed = suppressed_among(emails)
    now = timezone.now()
    new: dict[str, Lead] = {}
    changed: dict[str, Lead] = {}
    plan: list[tuple[str, str, str]] = []  # (status, email, reason)
    for data in inputs:
        if data.email in suppressed:
            plan.append(("skipped", data.email, suppressed[data.email]))
            continue
        lead = existing.get(data.email) or new.get(data.email)
        if lead is None:
            lead = Lead(
                email=data.email,
                custom_fields=data.custom_fields,
                tags=data.tags,
                is_role_address=data.is_role_address,
                is_disposable=data.is_disposable,
                mx_ok=data.mx_ok,
                **data.fields,
            )
            new[data.email] = lead
            plan.append(("created", data.email, ""))
        elif duplicates == DuplicatePolicy.SKIP:
            plan.append(("skipped", data.email, "duplicate: the lead exists"))
        else:
            _merge(lead, data)
            lead.updated_at = now
            if data.email in existing:
                changed[data.email] = lead
            plan.append(("updated", data.email, ""))
    # ignore_conflicts: a lead created meanwhile by another request keeps its values instead of
    # failing the whole batch; ids are read back below either way.
    Lead.objects.bulk_create(new.values(), ignore_conflicts=True)
    if changed:
        Lead.objects.bulk_update(changed.values(), _UPDATABLE)
    ids = dict(
        Lead.objects.filter(
            email__in=[e for s, e, _ in plan if s != "skipped" or e in existing]
        ).values_list("email", "id")
    )
    if lead_list is not None:
        through = Lead.lists.through
        members = {ids[e] for s, e, r in plan if e in ids and not r.startswith("suppressed")}
        through.objects.bulk_create(
            [through(lead_id=i, leadlist_id=lead_list.pk) for i in members],
            ignore_conflicts=True,
        )
    return [Outcome(status, ids.get(email), reason) for status, email, reason in plan]


# --- reads ----------------------------------------------------------------------------------------
def _in_schema(tenant: Tenant) -> None:
    require_schema(tenant, "lead services")


def _actor(principal: Principal | None) -> User | None:
    return principal.user if principal is not None else None


def list_leads(
    principal: Principal,
    *,
    q: str = "",
    status: str = "",
    tag: str = "",
    list_id: int | str | None = None,
) -> QuerySet[Lead]:
    """The tenant's leads, searched (email, name, company) and filtered."""
    require(principal, Area.LEADS, Level.READ)
    _in_schema(principal.tenant)
    leads = Lead.objects.all()
    return filter_leads(leads, q=q, status=status, tag=tag, list_id=list_id)


def filter_leads(
    leads: QuerySet[Lead],
    *,
    q: str = "",
    status: str = "",
    tag: str = "",
    list_id: int | str | None = None,
) -> QuerySet[Lead]:
    q = (q or "").strip()
    if q:
        words = q.split()
        for word in words[:5]:
            leads = leads.filter(
                Q(email__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(company__icontains=word)
            )
    if status:
        leads = leads.filter(status=status)
    if tag:
        leads = leads.filter(tags__contains=[tag.strip().lower()])
    if list_id not in (None, ""):
        try:
            leads = leads.filter(lists__id=int(list_id))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            leads = leads.none()
    return leads


def access_lead(principal: Principal, lead_id: int | str) -> Lead:
    require(principal, Area.LEADS, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = Lead.objects.filter(pk=int(lead_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such lead.")
    return found


def access_import(principal: Principal, import_id: int | str) -> LeadImport:
    require(principal, Area.LEADS, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = LeadImport.objects.select_related("lead_list").filter(pk=int(import_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such import.")
    return found


def all_tags(principal: Principal) -> list[str]:
    require(principal, Area.LEADS, Level.READ)
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT unnest(tags) AS t FROM campaigns_lead ORDER BY t LIMIT 200")
        return [row[0] for row in cursor.fetchall()]


EXPORT_COLUMNS = [
    *LEAD_FIELDS,
    "status",
    "tags",
    "lists",
    "is_role_address",
    "is_disposable",
    "mx_ok",
    "created_at",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _bound_to_schema(rows: Iterator[str]) -> Iterator[str]:
    """Run each step of `rows` in the schema it was made in: a streaming response is iterated
    after the tenant middleware has put the connection back on public."""
    schema = current_schema()  # read now: this function is not a generator

    def steps() -> Iterator[str]:
        while True:
            with schema_context(schema):
                try:
                    item = next(rows)
                except StopIteration:
                    return
            yield item

    return steps()


def export_csv(leads: QuerySet[Lead]) -> Iterator[str]:
    """The leads as CSV lines, streamed from a server-side cursor (custom fields as columns)."""
    return _bound_to_schema(_export_rows(leads))


def _export_rows(leads: QuerySet[Lead]) -> Iterator[str]:
    keys = sorted(
        {k for fields in leads.values_list("custom_fields", flat=True) for k in fields or {}}
    )[: MAX_CUSTOM_FIELDS * 4]
    writer = csvsafe.writer(_Echo())  # formula-like cells neutralised (penguinmails/csvsafe.py)
    yield writer.writerow(EXPORT_COLUMNS + keys)
    names = dict(LeadList.objects.values_list("id", "name"))
    through = Lead.lists.through
    for chunk in _chunks(leads.order_by("id").iterator(chunk_size=2000), 2000):
        member: dict[int, list[str]] = {}
        for lead_id, list_id in through.objects.filter(
            lead_id__in=[lead.pk for lead in chunk]
        ).values_list("lead_id", "leadlist_id"):
            member.setdefault(lead_id, []).append(names.get(list_id, ""))
        for lead in chunk:
            yield writer.writerow(
                [
                    lead.email,
                    lead.first_name,
                    lead.last_name,
                    lead.company,
                    lead.title,
                    lead.website,
                    lead.phone,
                    lead.timezone,
                    lead.status,
                    ";".join(lead.tags),
                    ";".join(sorted(member.get(lead.pk, []))),
                    lead.is_role_address,
                    lead.is_disposable,
                    "" if lead.mx_ok is None else lead.mx_ok,
                    lead.created_at.isoformat(),
                ]
                + [_cell(lead.custom_fields.get(k)) for k in keys]
            )


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _chunks(items: Iterable[Lead], size: int) -> Iterator[list[Lead]]:
    chunk: list[Lead] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_errors_csv(principal: Principal, lead_import: LeadImport) -> Iterator[str]:
    """The rows an import did not take, as CSV: line, email, outcome, reason."""
    require(principal, Area.LEADS, Level.READ)
    return _bound_to_schema(_error_rows(lead_import))


def _error_rows(lead_import: LeadImport) -> Iterator[str]:
    writer = csvsafe.writer(_Echo())  # formula-like cells neutralised (penguinmails/csvsafe.py)
    yield writer.writerow(["line", "email", "outcome", "reason"])
    rows = lead_import.errors.order_by("line", "id").values_list(
        "line", "email", "outcome", "reason"
    )
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow(row)


# --- writes: leads, lists, suppressions ---------------------------------------------------------
@dataclass(frozen=True)
class BulkResult:
    created: int
    updated: int
    skipped: int
    failed: int
    results: list[dict[str, Any]]


def _get_or_create_list(name: str | None) -> LeadList | None:
    name = (name or "").strip()
    if not name:
        return None
    if len(name) > 200:
        raise ValidationFailed(
            "A list name is at most 200 characters.", fields={"list": ["Too long."]}
        )
    return LeadList.objects.get_or_create(name=name)[0]


def create_leads(
    principal: Principal,
    *,
    rows: list[dict[str, Any]],
    duplicates: str = DuplicatePolicy.SKIP,
    list_name: str | None = None,
) -> BulkResult:
    """Create (or update, or skip) up to BULK_LIMIT leads; each row's errors are reported and the
    valid rows are written. A malformed payload (not a list of objects, too many rows, an
    unknown option) is refused whole with ValidationFailed."""
    require(principal, Area.LEADS, Level.WRITE)
    _in_schema(principal.tenant)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValidationFailed(
            "`leads` is a list of lead objects.", fields={"leads": ["A list of objects."]}
        )
    if not rows:
        raise ValidationFailed("No leads given.", fields={"leads": ["At least one lead."]})
    if len(rows) > BULK_LIMIT:
        message = f"At most {BULK_LIMIT} leads per request; send {len(rows)} in several."
        raise ValidationFailed(message, fields={"leads": [message]})
    if duplicates not in DuplicatePolicy.values:
        raise ValidationFailed(
            "Unknown duplicates option.", fields={"duplicates": ["update or skip."]}
        )
    unknown = sorted({k for r in rows for k in r} - {*LEAD_FIELDS, "tags", "custom_fields"})
    if unknown:
        message = f"Unknown lead fields: {', '.join(map(str, unknown))}."
        raise ValidationFailed(message, fields={"leads": [message]})
    valid: list[tuple[int, LeadInput]] = []
    failures: dict[int, dict[str, list[str]]] = {}
    for index, raw in enumerate(rows):
        data, errors = clean_lead(raw)
        if data is None:
            failures[index] = errors
        else:
            valid.append((index, data))
    with transaction.atomic():
        lead_list = _get_or_create_list(list_name)
        outcomes = _write_batch([d for _, d in valid], duplicates=duplicates, lead_list=lead_list)
        by_index = {index: outcome for (index, _), outcome in zip(valid, outcomes, strict=True)}
        results: list[dict[str, Any]] = []
        for index in range(len(rows)):
            if index in failures:
                results.append({"index": index, "status": "failed", "errors": failures[index]})
                continue
            o = by_index[index]
            entry: dict[str, Any] = {"index": index, "status": o.status, "id": o.lead_id}
            if o.reason:
                entry["reason"] = o.reason
            results.append(entry)
        counts = {s: sum(1 for r in results if r["status"] == s) for s in _STATUSES}
        audit(
            "leads.bulk_create",
            tenant=principal.tenant,
            actor=_actor(principal),
            list=lead_list.name if lead_list else None,
            **counts,
        )
    return BulkResult(results=results, **counts)


_STATUSES = ("created", "updated", "skipped", "failed")


def update_lead(principal: Principal, lead: Lead, *, changes: dict[str, Any]) -> Lead:
    """Change a lead's fields (only those given). Custom fields given replace the old ones;
    `lists` is a list of list ids. A new address must be valid and not another lead's."""
    require(principal, Area.LEADS, Level.WRITE)
    _in_schema(principal.tenant)
    allowed = {*LEAD_FIELDS, "tags", "custom_fields", "status", "lists"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", fields={name: ["Not a lead field."] for name in unknown}
        )
    data, errors = clean_lead(
        {k: v for k, v in changes.items() if k not in ("status", "lists")}, partial=True
    )
    status = changes.get("status")
    if status is not None and status not in LeadStatus.values:
        errors["status"] = [f"One of {', '.join(LeadStatus.values)}."]
    list_ids = changes.get("lists")
    lists: list[LeadList] | None = None
    if list_ids is not None:
        if not isinstance(list_ids, list) or not all(isinstance(i, int) for i in list_ids):
            errors["lists"] = ["A list of list ids."]
        else:
            lists = list(LeadList.objects.filter(pk__in=list_ids))
            if len(lists) != len(set(list_ids)):
                errors["lists"] = ["Unknown list id."]
    if errors or data is None:
        raise ValidationFailed("Invalid input.", fields=errors)
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        if data.email and data.email != lead.email:
            if Lead.objects.filter(email=data.email).exists():
                raise Conflict(
                    f"Another lead has the address {data.email}.",
                    fields={"email": ["Another lead has this address."]},
                )
            lead.email = data.email
            lead.is_role_address = data.is_role_address
            lead.is_disposable = data.is_disposable
            lead.mx_ok = None
        for name, value in data.fields.items():
            setattr(lead, name, value)
        if "custom_fields" in changes:
            lead.custom_fields = data.custom_fields
        if "tags" in changes:
            lead.tags = data.tags
        if status is not None:
            lead.status = status
        lead.save()
        if lists is not None:
            lead.lists.set(lists)
        audit(
            "leads.update",
            tenant=principal.tenant,
            actor=_actor(principal),
            lead_id=lead.pk,
            fields=sorted(changes),
        )
    return lead


def delete_lead(principal: Principal, lead: Lead) -> None:
    require(principal, Area.LEADS, Level.WRITE)
    _in_schema(principal.tenant)
    with transaction.atomic():
        audit("leads.delete", tenant=principal.tenant, actor=_actor(principal), lead_id=lead.pk)
        Lead.objects.filter(pk=lead.pk).delete()


def create_list(principal: Principal, *, name: str, description: str = "") -> LeadList:
    require(principal, Area.LEADS, Level.WRITE)
    _in_schema(principal.tenant)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed(
            "Name the list (200 characters at most).",
            fields={"name": ["Required, 200 characters at most."]},
        )
    with transaction.atomic():
        if LeadList.objects.filter(name=name).exists():
            raise Conflict(f"A list named {name!r} exists.", fields={"name": ["Already exists."]})
        created = LeadList.objects.create(name=name, description=(description or "")[:500])
        audit("leads.list_create", tenant=principal.tenant, actor=_actor(principal), name=name)
    return created


def add_suppression(
    principal: Principal | None,
    *,
    tenant: Tenant,
    value: str,
    reason: str = SuppressionReason.MANUAL,
    source: str = "",
) -> Suppression:
    """Suppress an address or a whole domain (idempotent: the first reason stays)."""
    if principal is not None:
        require(principal, Area.LEADS, Level.WRITE)
    _in_schema(tenant)
    raw = (value or "").strip()
    is_domain = "@" not in raw
    try:
        normalized = normalize_email(raw if not is_domain else f"x@{raw}")
    except ValueError as exc:
        raise ValidationFailed(str(exc), fields={"value": [str(exc)]}) from None
    if is_domain:
        normalized = normalized.rpartition("@")[2]
    with transaction.atomic():
        row, created = Suppression.objects.get_or_create(
            value=normalized,
            defaults={"is_domain": is_domain, "reason": reason, "source": source[:200]},
        )
        if created:
            audit(
                "leads.suppress",
                tenant=tenant,
                actor=_actor(principal),
                value=normalized,
                reason=reason,
            )
    return row


# --- imports --------------------------------------------------------------------------------------
def create_import(
    principal: Principal,
    *,
    upload: IO[bytes],
    filename: str,
    mapping: dict[str, str] | None = None,
    duplicates: str = DuplicatePolicy.UPDATE,
    list_name: str | None = None,
    check_mx: bool = False,
    start: bool = True,
) -> LeadImport:
    """Store an uploaded CSV under the tenant's media folder and, with `start`, enqueue its job.

    The file is checked first (UTF-8, a header, unique column names, an email column, a valid
    mapping): an unusable file raises ValidationFailed on `file` and nothing is stored.
    """
    require(principal, Area.LEADS, Level.WRITE)
    _in_schema(principal.tenant)
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        message = f"The file is over {MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        raise ValidationFailed(message, fields={"file": [message]})
    if duplicates not in DuplicatePolicy.values:
        raise ValidationFailed("Unknown option.", fields={"duplicates": ["update or skip."]})
    try:
        shape = read_shape(upload)
        full = check_mapping(shape.headers, mapping or {}) if start else None
    except UnusableFile as exc:
        raise ValidationFailed(str(exc), fields={"file": [str(exc)]}) from None
    storage = LeadImport._meta.get_field("file").storage
    upload.seek(0)
    # Stored before the transaction and removed if it fails, so no half-written import exists.
    stored = storage.save(timezone.now().strftime("lead-imports/%Y/%m/leads.csv"), File(upload))
    try:
        with transaction.atomic():
            lead_list = _get_or_create_list(list_name)
            lead_import = LeadImport.objects.create(
                file=stored,
                original_name=(filename or "leads.csv")[:255],
                headers=shape.headers,
                mapping=full or default_mapping(shape.headers),
                delimiter=shape.delimiter,
                duplicates=duplicates,
                check_mx=check_mx,
                lead_list=lead_list,
                created_by_email=principal.user.email if principal.user else "",
            )
            audit(
                "leads.import_create",
                tenant=principal.tenant,
                actor=_actor(principal),
                import_id=lead_import.pk,
                file=lead_import.original_name,
            )
            if start:
                _enqueue(principal.tenant, lead_import)
    except BaseException:
        storage.delete(stored)
        raise
    return lead_import


def _enqueue(tenant: Tenant, lead_import: LeadImport) -> Job:
    job = enqueue(
        IMPORT_TASK,
        {"import_id": lead_import.pk},
        tenant=tenant,
        idempotency_key=f"leads.import:{tenant.schema_name}:{lead_import.pk}",
    )
    LeadImport.objects.filter(pk=lead_import.pk).update(job_id=job.pk)
    lead_import.job_id = job.pk
    return job


def start_import(
    principal: Principal,
    lead_import: LeadImport,
    *,
    mapping: dict[str, str],
    duplicates: str | None = None,
    list_name: str | None = None,
    check_mx: bool | None = None,
) -> Job:
    """Confirm an uploaded import's mapping (and options) and enqueue its job."""
    require(principal, Area.LEADS, Level.WRITE)
    _in_schema(principal.tenant)
    if duplicates is not None and duplicates not in DuplicatePolicy.values:
        raise ValidationFailed("Unknown option.", fields={"duplicates": ["update or skip."]})
    try:
        full = check_mapping(lead_import.headers, mapping)
    except UnusableFile as exc:
        raise ValidationFailed(str(exc), fields={"mapping": [str(exc)]}) from None
    with transaction.atomic():
        locked = LeadImport.objects.select_for_update().get(pk=lead_import.pk)
        if locked.job_id is not None or locked.status != ImportStatus.PENDING:
            raise Conflict("This import has already started.")
        locked.mapping = full
        if duplicates is not None:
            locked.duplicates = duplicates
        if check_mx is not None:
            locked.check_mx = check_mx
        if list_name:
            locked.lead_list = _get_or_create_list(list_name)
        locked.save(update_fields=["mapping", "duplicates", "check_mx", "lead_list"])
        job = _enqueue(principal.tenant, locked)
        audit(
            "leads.import_start",
            tenant=principal.tenant,
            actor=_actor(principal),
            import_id=locked.pk,
        )
    return job
