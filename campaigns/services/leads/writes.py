"""Writing leads from the dashboard, API and commands: `create_leads` (through `_write_batch`),
`update_lead`, `delete_lead`, lists and suppressions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.models import (
    LEAD_FIELDS,
    DuplicatePolicy,
    Lead,
    LeadList,
    LeadStatus,
    Suppression,
    SuppressionReason,
)
from campaigns.services.leads.reads import _actor, _in_schema
from campaigns.services.leads.validation import TEXT_FIELDS, LeadInput, clean_lead, normalize_email
from penguinmails.errors import Conflict, ValidationFailed
from tenants.models import Tenant
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

BULK_LIMIT = 1000


class RowOutcome(StrEnum):
    """What a bulk write did with one input row (the API's `results[].status`)."""

    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"  # with a reason: suppressed, or a duplicate under the skip policy
    FAILED = "failed"  # with the field errors


@dataclass(frozen=True)
class Outcome:
    """What happened to one input: created, updated, skipped (reason) or failed (errors)."""

    status: RowOutcome
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
    plan: list[tuple[RowOutcome, str, str]] = []  # (status, email, reason)
    for data in inputs:
        if data.email in suppressed:
            plan.append((RowOutcome.SKIPPED, data.email, suppressed[data.email]))
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
            plan.append((RowOutcome.CREATED, data.email, ""))
        elif duplicates == DuplicatePolicy.SKIP:
            plan.append((RowOutcome.SKIPPED, data.email, "duplicate: the lead exists"))
        else:
            _merge(lead, data)
            lead.updated_at = now
            if data.email in existing:
                changed[data.email] = lead
            plan.append((RowOutcome.UPDATED, data.email, ""))
    # ignore_conflicts: a lead created meanwhile by another request keeps its values instead of
    # failing the whole batch; ids are read back below either way.
    Lead.objects.bulk_create(new.values(), ignore_conflicts=True)
    if changed:
        Lead.objects.bulk_update(changed.values(), _UPDATABLE)
    ids = dict(
        Lead.objects.filter(
            email__in=[e for s, e, _ in plan if s != RowOutcome.SKIPPED or e in existing]
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
                results.append(
                    {"index": index, "status": RowOutcome.FAILED, "errors": failures[index]}
                )
                continue
            o = by_index[index]
            entry: dict[str, Any] = {"index": index, "status": o.status, "id": o.lead_id}
            if o.reason:
                entry["reason"] = o.reason
            results.append(entry)
        counts: dict[str, Any] = {
            s.value: sum(1 for r in results if r["status"] == s) for s in RowOutcome
        }
        audit(
            "leads.bulk_create",
            tenant=principal.tenant,
            actor=_actor(principal),
            list=lead_list.name if lead_list else None,
            **counts,
        )
    return BulkResult(results=results, **counts)


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
