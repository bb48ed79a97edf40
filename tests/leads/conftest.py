"""Fixtures for leads: CSV files, suppressions, and importing through the queue runner."""

from __future__ import annotations

import io
from typing import Any

from django_tenants.utils import schema_context

from campaigns.models import Lead, LeadImport
from campaigns.services.leads import add_suppression, create_import
from tests.conftest import Cast
from tests.domains.conftest import principal, run_jobs

__all__ = ["principal", "run_jobs", "upload", "suppress", "leads_in", "import_in", "csv_bytes"]


def csv_bytes(text: str, *, bom: bool = False) -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def upload(cast: Cast, data: bytes, **options: Any) -> LeadImport:
    with schema_context(cast.tenant.schema_name):
        return create_import(
            principal(cast.tenant, cast.owner),
            upload=io.BytesIO(data),
            filename="leads.csv",
            **options,
        )


def suppress(cast: Cast, value: str, reason: str = "unsubscribed") -> None:
    with schema_context(cast.tenant.schema_name):
        add_suppression(None, tenant=cast.tenant, value=value, reason=reason, source="test")


def leads_in(cast: Cast) -> dict[str, Lead]:
    with schema_context(cast.tenant.schema_name):
        return {lead.email: lead for lead in Lead.objects.prefetch_related("lists")}


def import_in(cast: Cast, import_id: int) -> LeadImport:
    with schema_context(cast.tenant.schema_name):
        return LeadImport.objects.get(pk=import_id)
