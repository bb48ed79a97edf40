"""CSV imports: an upload checked and stored, and its job enqueued (the job's work is in
`campaigns.services.lead_import`)."""

from __future__ import annotations

from typing import IO

from django.core.files.base import File
from django.db import transaction
from django.utils import timezone

from campaigns.imports import UnusableFile, check_mapping, default_mapping, read_shape
from campaigns.models import DuplicatePolicy, ImportStatus, LeadImport
from campaigns.services.leads.reads import _actor, _in_schema
from campaigns.services.leads.writes import _get_or_create_list
from penguinmails.errors import Conflict, ValidationFailed
from penguinmails.models import Job
from penguinmails.queue.producer import enqueue
from tenants.models import Tenant
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

IMPORT_TASK = "leads.import"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class ImportTakenOver(Exception):
    """Another run of the same import committed a batch this run was about to write."""


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
