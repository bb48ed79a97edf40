"""Blocklist jobs (docs/reputation.md): thin, ids and addresses only in the payload."""

from __future__ import annotations

from penguinmails.queue.producer import JobSpec, enqueue_many
from penguinmails.queue.registry import JobContext, Payload, job_handler
from reputation.services import blocklists, scores
from reputation.services.rescore import SCORE_TENANT_TASK, rescore_key
from tenants.models import Tenant, TenantStatus

IPS_DUE_TASK = "reputation.blocklists_ips_due"
CHECK_IPS_TASK = "reputation.check_ips"
DOMAINS_DUE_TASK = "reputation.blocklists_domains_due"
CHECK_DOMAINS_TASK = "reputation.check_domains"
CHUNK = 250  # IPs per check job


@job_handler(IPS_DUE_TASK, max_attempts=1, priority=120, timeout=120)
def ips_due(payload: Payload, context: JobContext) -> None:
    # Public: the IPs due (never checked, or past their jittered next check), in chunks.
    due = blocklists.due_ips()
    enqueue_many(
        JobSpec(
            CHECK_IPS_TASK, {"addresses": due[i : i + CHUNK]}, idempotency_key=f"bl-ips:{due[i]}"
        )
        for i in range(0, len(due), CHUNK)
    )


@job_handler(CHECK_IPS_TASK, max_attempts=2, priority=120, timeout=600)
def check_ips(payload: Payload, context: JobContext) -> None:
    blocklists.check_ips(payload["addresses"])


@job_handler(DOMAINS_DUE_TASK, max_attempts=1, priority=120, timeout=120)
def domains_due(payload: Payload, context: JobContext) -> None:
    # One public read of the active tenants; each tenant's job checks its due domains in its
    # own schema (no loop over schemas here). Deduplicated while one is still live.
    tenants = Tenant.objects.filter(status=TenantStatus.ACTIVE, is_template=False)
    enqueue_many(
        JobSpec(CHECK_DOMAINS_TASK, {}, tenant=t, idempotency_key=f"bl-domains:{t.pk}")
        for t in tenants.only("id", "schema_name")
    )


@job_handler(CHECK_DOMAINS_TASK, max_attempts=2, priority=120, timeout=600, tenant_scoped=True)
def check_domains(payload: Payload, context: JobContext) -> None:
    blocklists.check_domains(Tenant.objects.get(pk=context.tenant_id))


SCORES_DUE_TASK = "reputation.scores_due"


@job_handler(SCORES_DUE_TASK, max_attempts=1, priority=140, timeout=120)
def scores_due(payload: Payload, context: JobContext) -> None:
    # Public: one deduplicated scoring job per active tenant (one public read).
    tenants = Tenant.objects.filter(status=TenantStatus.ACTIVE, is_template=False)
    enqueue_many(
        JobSpec(SCORE_TENANT_TASK, {}, tenant=t, idempotency_key=rescore_key(t.pk))
        for t in tenants.only("id", "schema_name")
    )


@job_handler(SCORE_TENANT_TASK, max_attempts=3, priority=140, timeout=600, tenant_scoped=True)
def score_tenant(payload: Payload, context: JobContext) -> None:
    scores.score_tenant(Tenant.objects.get(pk=context.tenant_id))
