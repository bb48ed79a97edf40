"""The `leads.import` job's entry point: one run of an import, from its status to its end."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from campaigns import webhook_events
from campaigns.imports import (
    UnusableFile,
    check_text,
)
from campaigns.models import (
    ImportStatus,
    LeadImport,
)
from campaigns.services.lead_import.reader import batch_size
from campaigns.services.lead_import.writers import Counts, _write_batches
from campaigns.services.leads import (
    ImportTakenOver,
    _in_schema,
)
from penguinmails import states
from tenants.models import Tenant
from tenants.services.audit import record as audit


def run_import(
    import_id: int,
    *,
    tenant: Tenant,
    size: int | None = None,
    on_progress: Callable[[LeadImport], None] | None = None,
) -> LeadImport | None:
    """The job: stream the file, validate, write in batches, count. Idempotent: a finished import
    is left alone; a running one resumes after its last committed batch."""
    _in_schema(tenant)
    size = size or batch_size()
    lead_import = LeadImport.objects.select_related("lead_list").filter(pk=import_id).first()
    if lead_import is None or lead_import.finished:
        return lead_import
    with transaction.atomic():
        states.transition(
            LeadImport.objects.filter(pk=import_id),
            ImportStatus.RUNNING,
            from_=[ImportStatus.PENDING],
            actor=lead_import.job_id,
            started_at=timezone.now(),
        )
    lead_import.refresh_from_db()
    try:
        if lead_import.total_rows is None:
            # Not a csv pass (that was ~1.1 s a million before any row was written): the lines,
            # and the file refused if it is not UTF-8 (`check_text`).
            with lead_import.file.open("rb") as stream:
                _set_total(lead_import, check_text(stream))
        if on_progress:
            on_progress(lead_import)

        def report(counts: Counts) -> None:
            counts.add_to(lead_import)
            if on_progress:
                on_progress(lead_import)

        _write_batches(lead_import, tenant=tenant, size=size, report=report)
        # Every row is read: the exact count (the lines counted may be more).
        _set_total(lead_import, lead_import.processed)
    except ImportTakenOver:
        lead_import.refresh_from_db()
        return lead_import
    except UnusableFile as exc:
        message = str(exc)
        if lead_import.processed:
            # Met by the reader past the rows already written (a csv error `check_text` cannot
            # see): they stay, and the message says so.
            message += f" The {lead_import.processed:,} rows before it were imported."
        _finish(tenant, lead_import, ImportStatus.FAILED, message)
    except FileNotFoundError:
        _finish(tenant, lead_import, ImportStatus.FAILED, "The uploaded file is gone.")
    else:
        _finish(tenant, lead_import, ImportStatus.COMPLETED, "")
    lead_import.refresh_from_db()
    if on_progress:
        on_progress(lead_import)
    return lead_import


def _set_total(lead_import: LeadImport, total: int) -> None:
    if total != lead_import.total_rows:
        LeadImport.objects.filter(pk=lead_import.pk).update(total_rows=total)
        lead_import.total_rows = total


def _finish(tenant: Tenant, lead_import: LeadImport, status: str, message: str) -> None:
    with transaction.atomic():
        moved = states.transition(
            LeadImport.objects.filter(pk=lead_import.pk),
            status,
            from_=[ImportStatus.RUNNING],
            reason=message,
            actor=lead_import.job_id,
            error_message=message[:500],
            finished_at=timezone.now(),
        )
        if moved:
            lead_import.refresh_from_db()
            audit(
                f"leads.import_{status}",
                tenant=tenant,
                import_id=lead_import.pk,
                file=lead_import.original_name,
                processed=lead_import.processed,
                created=lead_import.created,
                updated=lead_import.updated,
                skipped=lead_import.skipped,
                failed=lead_import.failed,
                error=message,
            )
            webhook_events.import_finished(lead_import)
