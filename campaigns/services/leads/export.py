"""CSV out: the lead export and an import's error rows, streamed and formula-safe."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django_tenants.utils import schema_context

from campaigns.models import LEAD_FIELDS, Lead, LeadImport, LeadList
from campaigns.services.leads.validation import MAX_CUSTOM_FIELDS
from penguinmails import csvsafe
from tenants.db import current_schema
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require

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
