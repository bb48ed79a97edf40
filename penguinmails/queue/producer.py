"""Enqueueing jobs. Joins the caller's transaction: a job whose transaction rolls back never runs.

from penguinmails.queue.producer import enqueue
enqueue("mail.send", {"message_id": m.id}, tenant=tenant, priority=40)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.models import TenantMixin

from penguinmails.errors import ValidationFailed
from penguinmails.models import LIVE_STATUSES, Job, JobStatus
from penguinmails.queue.publisher import Publishable, publish
from penguinmails.queue.queues import URGENT_BELOW
from penguinmails.queue.registry import UnknownHandler, get_handler
from penguinmails.queue.states import transition

log = logging.getLogger(__name__)


@dataclass
class JobSpec:
    """One job for `enqueue_many`; the fields mean what `enqueue`'s arguments mean."""

    task: str
    payload: dict[str, Any] = field(default_factory=dict)
    # A tenants.models.Tenant (the core names no app; every tenant model is a TenantMixin).
    tenant: TenantMixin | None = None
    priority: int | None = None
    run_at: dt.datetime | None = None
    idempotency_key: str | None = None
    max_attempts: int | None = None


def enqueue(
    task: str,
    payload: dict[str, Any] | None = None,
    *,
    tenant: TenantMixin | None = None,
    priority: int | None = None,
    run_at: dt.datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Create a job in the caller's transaction. With an idempotency key already held by a live
    job, that job is returned instead of a new one."""
    spec = JobSpec(task, payload or {}, tenant, priority, run_at, idempotency_key, max_attempts)
    job = _build(spec)
    if idempotency_key:
        try:
            # A savepoint, so the conflict does not poison the caller's transaction.
            with transaction.atomic():
                job.save(force_insert=True)
        except IntegrityError:
            existing = _live_with_keys([idempotency_key])
            if idempotency_key not in existing:
                raise
            return existing[idempotency_key]
    else:
        job.save(force_insert=True)
    _publish_urgent_on_commit([job])
    return job


def enqueue_many(specs: Iterable[JobSpec]) -> list[Job]:
    """Create many jobs with one INSERT per 1,000 rows. Jobs whose idempotency key is held by a
    live job are replaced in the result by that job."""
    jobs = [_build(spec) for spec in specs]
    plain = [j for j in jobs if not j.idempotency_key]
    Job.objects.bulk_create(plain, batch_size=1000)
    by_key: dict[str, Job] = {}
    keys = [j.idempotency_key for j in jobs if j.idempotency_key]
    if keys:
        # ON CONFLICT DO NOTHING works with the partial unique index; the live rows are then
        # read back by key (including those other transactions had already created).
        with transaction.atomic():
            keyed = [j for j in jobs if j.idempotency_key]
            Job.objects.bulk_create(keyed, batch_size=1000, ignore_conflicts=True)
            by_key = _live_with_keys(keys)
    result = [by_key.get(j.idempotency_key, j) if j.idempotency_key else j for j in jobs]
    _publish_urgent_on_commit([j for j in result if j.status == JobStatus.ENQUEUED])
    return result


def _build(spec: JobSpec) -> Job:
    try:
        handler = get_handler(spec.task)
    except UnknownHandler as exc:
        raise ValidationFailed(str(exc), fields={"task": [str(exc)]}) from None
    if handler.tenant_scoped and spec.tenant is None:
        raise ValidationFailed(f"{spec.task} is a tenant job and needs a tenant")
    priority = handler.priority if spec.priority is None else spec.priority
    if not 0 <= priority <= 32767:
        raise ValidationFailed("priority must be between 0 and 32767")
    now = timezone.now()
    run_at = spec.run_at or now
    job = Job(
        tenant=spec.tenant,
        task=spec.task,
        payload=spec.payload,
        priority=priority,
        run_at=run_at,
        idempotency_key=spec.idempotency_key or None,
        max_attempts=spec.max_attempts or handler.max_attempts,
        created_at=now,
    )
    if priority < URGENT_BELOW and run_at <= now:
        # Urgent: written enqueued, with the lease that covers its message, and published after
        # commit (no second statement). Should the publish never happen, the lease brings it
        # back (the reaper), as for any lost message.
        job.status = JobStatus.ENQUEUED
        job.lease_expires_at = now + timedelta(seconds=settings.JOB_ENQUEUED_LEASE_SECONDS)
    return job


def _live_with_keys(keys: list[str]) -> dict[str, Job]:
    rows = Job.objects.filter(idempotency_key__in=keys, status__in=LIVE_STATUSES)
    return {j.idempotency_key: j for j in rows if j.idempotency_key}


def _publish_urgent_on_commit(jobs: list[Job]) -> None:
    urgent = [Publishable(j.pk, j.priority, j.task) for j in jobs if j.status == JobStatus.ENQUEUED]
    if urgent:
        transaction.on_commit(lambda: publish_urgent(urgent))


def publish_urgent(jobs: list[Publishable]) -> None:
    """Publish urgent jobs (written enqueued). Failing here loses nothing: they go back to
    queued for the migrator, or, should even that fail, their lease brings them back."""
    try:
        publish(jobs)
    except Exception:  # noqa: BLE001 - the caller's transaction has committed; never fail it now
        ids = [j.id for j in jobs]
        log.exception("urgent jobs %s not published at once; the migrator will", ids)
        try:
            transition(
                Job.objects.filter(pk__in=ids),
                to=JobStatus.QUEUED,
                from_=[JobStatus.ENQUEUED],
                lease_expires_at=None,
            )
        except Exception:  # noqa: BLE001 - the reaper re-queues them when the lease ends
            log.exception("urgent jobs %s left enqueued until their lease ends", ids)
