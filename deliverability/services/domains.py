"""Sending domains: add, verify, check, publish and remove (docs/domains.md).

Every function runs in the tenant's schema (the dashboard and API on the tenant's host, job
handlers through the queue runner, commands inside `schema_context`) and refuses otherwise.
Background steps are jobs on the durable queue, enqueued in the caller's transaction:

- `domains.publish`: publish the records through the configured DNS provider, then ask for a check;
- `domains.verify`: query DNS, store each record's verdict, settle the status, schedule the next
  check. Scheduled checks are the same job with `due` in the payload and `run_at` = `due`: each
  check enqueues the next one, so no periodic scan of tenant schemas is needed. A scheduled job
  whose `due` no longer matches the domain's `next_check_at` (a manual check ran meanwhile and
  scheduled its own successor) does nothing, so there is one live chain per domain;
- `domains.unpublish`: remove a deleted domain's records from the provider.

The records a domain must publish, and their stored verdicts, are built in `domain_records`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from billing.entitlements import Resource, lock_usage, require_capacity
from deliverability.dns.providers import (
    DnsProviderError,
    LocalDnsProvider,
    PublishOutcome,
    provider_from_settings,
)
from deliverability.dns.records import (
    DnsRecord,
    DnsRecordError,
    RecordPurpose,
    RecordType,
    generate_dkim_keypair,
    generate_domain_records,
    normalize_name,
)
from deliverability.dns.verify import CheckStatus, RecordCheck, verify_records
from deliverability.models import DomainStatus, SendingDomain
from deliverability.services.domain_records import (
    REQUIRED_PURPOSES,
    _record_payload,
    _spec_for,
    _store_records,
    expected_records,
    sending_ips_for,
)
from deliverability.services.domain_records import dns_spec as dns_spec  # re-exported
from deliverability.services.states import transition
from infrastructure.services.ips import request_render as request_postfix_render
from penguinmails.errors import DomainError, NotFound, ValidationFailed
from penguinmails.models import Job
from penguinmails.queue.producer import enqueue
from tenants.db import require_schema
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

VERIFY_TASK = "domains.verify"
PUBLISH_TASK = "domains.publish"
UNPUBLISH_TASK = "domains.unpublish"
# A verified domain is re-checked a few times a day: a broken record is flagged within hours. A
# domain still being set up is re-checked hourly, so fixing DNS is noticed without a click.
RECHECK_VERIFIED = timedelta(hours=6)
RECHECK_UNSETTLED = timedelta(hours=1)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DnsPublishRetry(Exception):
    """A publish failure worth retrying (provider 5xx, rate limit, timeout): the job retries."""


class DnsPublishFailed(DomainError):
    """A publish failure retrying cannot fix (bad token, no such zone)."""

    status_code = 502
    code = "dns_publish_failed"


@dataclass(frozen=True)
class CheckResult:
    """What one verification found: the domain after it, and each record's verdict."""

    domain: SendingDomain
    checks: list[RecordCheck]
    changed: bool  # whether the status moved

    @property
    def verified(self) -> bool:
        return self.domain.status == DomainStatus.VERIFIED


# --- helpers -------------------------------------------------------------------------------------
def _in_schema(tenant: Tenant) -> None:
    require_schema(tenant, "domain services")


def validate_domain_name(raw: str) -> str:
    """The domain in lower-case IDNA form, or ValidationFailed on `name`."""
    try:
        name = normalize_name(raw or "")
    except DnsRecordError:
        raise ValidationFailed(
            "Enter a domain name such as example.com.",
            fields={"name": ["Enter a domain name such as example.com."]},
        ) from None
    labels = name.split(".")
    problem = ""
    if len(name) > 253 or len(labels) < 2:
        problem = "Enter a full domain name such as example.com."
    elif not all(_LABEL.match(label) for label in labels):
        problem = "A domain has letters, digits and hyphens between dots, such as mail-example.com."
    elif labels[-1].isdigit():
        problem = "Enter a domain name, not an IP address."
    if problem:
        raise ValidationFailed(problem, fields={"name": [problem]})
    return name


def _tracking_host(raw: str | None, domain: str) -> str:
    if not raw:
        return f"track.{domain}"
    try:
        host = normalize_name(raw)
    except DnsRecordError:
        host = ""
    if not host.endswith("." + domain):
        message = f"The tracking host must be a name under {domain}, such as track.{domain}."
        raise ValidationFailed(message, fields={"tracking_host": [message]})
    return host


def _dmarc_rua(raw: str | None) -> str:
    address = (raw or settings.DMARC_REPORT_ADDRESS).strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        message = "Enter the email address that receives DMARC reports."
        raise ValidationFailed(message, fields={"dmarc_rua": [message]}) from None
    return address


def _actor(principal: Principal | None) -> User | None:
    return principal.user if principal is not None else None


# --- reads ---------------------------------------------------------------------------------------
def list_domains(principal: Principal) -> QuerySet[SendingDomain]:
    require(principal, Area.DOMAINS, Level.READ)
    _in_schema(principal.tenant)
    return SendingDomain.objects.all()


def access_domain(principal: Principal, domain_id: int | str) -> SendingDomain:
    """One of the principal's tenant's domains, or NotFound (another tenant's ids are unknown
    here: its rows live in another schema)."""
    require(principal, Area.DOMAINS, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = SendingDomain.objects.filter(pk=int(domain_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such domain.")
    return found


# --- writes --------------------------------------------------------------------------------------
def add_domain(
    principal: Principal,
    *,
    name: str,
    tracking_host: str | None = None,
    dmarc_rua: str | None = None,
) -> SendingDomain:
    """Add a sending domain: a fresh 2048-bit DKIM key, its records, and a publish job."""
    require(principal, Area.DOMAINS, Level.WRITE)
    tenant = principal.tenant
    _in_schema(tenant)
    domain_name = validate_domain_name(name)
    host = _tracking_host(tracking_host, domain_name)
    rua = _dmarc_rua(dmarc_rua)
    keypair = generate_dkim_keypair()  # outside the transaction: ~0.1 s of CPU
    with transaction.atomic():
        if SendingDomain.objects.filter(name=domain_name).exists():
            message = f"{domain_name} is already one of your domains."
            raise ValidationFailed(message, fields={"name": [message]})
        _require_capacity(tenant)
        domain = SendingDomain(
            name=domain_name,
            tracking_host=host,
            dkim_selector=settings.MAILU_DKIM_SELECTOR,
            dkim_public_key=keypair.public_key_b64,
            dkim_private_key=keypair.private_key_pem,
            dmarc_rua=rua,
            created_by_email=principal.user.email if principal.user else "",
        )
        try:
            records = generate_domain_records(_spec_for(domain, tenant))
        except DnsRecordError as exc:
            raise ValidationFailed(str(exc), fields={"name": [str(exc)]}) from None
        try:
            with transaction.atomic():
                domain.save(force_insert=True)
        except IntegrityError:  # a concurrent add of the same name won
            message = f"{domain_name} is already one of your domains."
            raise ValidationFailed(message, fields={"name": [message]}) from None
        _store_records(domain, records, [])
        audit(
            "domain.added",
            tenant=tenant,
            actor=_actor(principal),
            domain=domain_name,
            domain_id=domain.pk,
        )
        enqueue(
            PUBLISH_TASK,
            {"domain_id": domain.pk},
            tenant=tenant,
            idempotency_key=f"{PUBLISH_TASK}:{tenant.pk}:{domain.pk}",
        )
        request_postfix_render(tenant)  # bind the new domain to one of the tenant's IPs
    return domain


def _require_capacity(tenant: Tenant) -> None:
    """The plan's sending-domain limit. The tenant row is locked first, so two requests adding
    the last allowed domain at once cannot both pass."""
    lock_usage(tenant)
    require_capacity(
        tenant, Resource.SENDING_DOMAINS, in_use=SendingDomain.objects.count(), adding=1
    )


def verify_domain(principal: Principal, domain: SendingDomain) -> Job:
    """ "Verify now": ask for a check; returns the job (202 in the API)."""
    require(principal, Area.DOMAINS, Level.WRITE)
    return request_check(domain, tenant=principal.tenant, actor=_actor(principal), reason="asked")


def request_check(
    domain: SendingDomain, *, tenant: Tenant, actor: User | None = None, reason: str
) -> Job:
    """Move the domain to verifying and enqueue an urgent check (system callers: publish)."""
    _in_schema(tenant)
    with transaction.atomic():
        locked = SendingDomain.objects.select_for_update().filter(pk=domain.pk).first()
        if locked is None:
            raise NotFound("No such domain.")
        if locked.status != DomainStatus.VERIFYING:
            transition(locked, DomainStatus.VERIFYING, reason=reason)
        # One live check per domain: a second click while one waits returns that one.
        job = enqueue(
            VERIFY_TASK,
            {"domain_id": locked.pk},
            tenant=tenant,
            idempotency_key=f"{VERIFY_TASK}:{tenant.pk}:{locked.pk}",
        )
        locked.check_job_id = job.pk
        locked.save(update_fields=["check_job_id"])
        audit(
            "domain.verify_requested",
            tenant=tenant,
            actor=actor,
            domain=locked.name,
            domain_id=locked.pk,
            job_id=job.pk,
        )
    domain.status, domain.check_job_id = locked.status, job.pk
    return job


def _settle(domain: SendingDomain, checks: list[RecordCheck]) -> DomainStatus:
    required = [c for c in checks if c.record.purpose in REQUIRED_PURPOSES]
    current = DomainStatus(domain.status)
    if all(c.ok for c in required):
        return DomainStatus.VERIFIED
    if any(c.status in (CheckStatus.MISSING, CheckStatus.WRONG) for c in required):
        return DomainStatus.FAILING if domain.verified_at else DomainStatus.UNVERIFIED
    # Inconclusive (DNS timeouts only): a DNS outage proves nothing, so the domain keeps the
    # state its last conclusive check gave it.
    if current in (DomainStatus.VERIFYING, DomainStatus.PENDING):
        if domain.flagged_at is not None:
            return DomainStatus.FAILING
        return DomainStatus.VERIFIED if domain.verified_at else DomainStatus.UNVERIFIED
    return current


def run_check(
    domain_id: int,
    *,
    tenant: Tenant,
    job_id: int | None = None,
    due: dt.datetime | None = None,
) -> CheckResult | None:
    """Query DNS for every record, store the verdicts, settle the status, schedule the next
    check. None when the domain is gone or (`due` given) a newer check superseded this one."""
    _in_schema(tenant)
    domain = SendingDomain.objects.filter(pk=domain_id).first()
    if domain is None or (due is not None and domain.next_check_at != due):
        return None
    records = expected_records(domain, tenant=tenant)
    # DNS is asked outside any transaction: no row lock is held for seconds of network time.
    checks = verify_records(records)
    with transaction.atomic():
        domain = SendingDomain.objects.select_for_update().filter(pk=domain_id).first()
        if domain is None:
            return None
        before = domain.status
        target = _settle(domain, checks)
        if target != before:
            transition(domain, target, reason=_summary(checks), job_id=job_id)
        _store_records(domain, records, checks)
        now = timezone.now()
        interval = RECHECK_VERIFIED if target == DomainStatus.VERIFIED else RECHECK_UNSETTLED
        domain.last_checked_at = now
        domain.next_check_at = now + interval
        if domain.check_job_id == job_id:
            domain.check_job_id = None
        domain.save(update_fields=["last_checked_at", "next_check_at", "check_job_id"])
        due_text = domain.next_check_at.isoformat()
        enqueue(
            VERIFY_TASK,
            {"domain_id": domain.pk, "due": due_text},
            tenant=tenant,
            run_at=domain.next_check_at,
            priority=150,  # routine: never ahead of sends or "Verify now"
            idempotency_key=f"{VERIFY_TASK}:{tenant.pk}:{domain.pk}:{due_text}",
        )
        if target == DomainStatus.FAILING and before != DomainStatus.FAILING:
            audit(
                "domain.failing",
                tenant=tenant,
                domain=domain.name,
                domain_id=domain.pk,
                problems=_summary(checks),
            )
        elif target != before:
            audit(
                "domain.checked",
                tenant=tenant,
                domain=domain.name,
                domain_id=domain.pk,
                status=target,
            )
    return CheckResult(domain, checks, changed=target != before)


def _summary(checks: list[RecordCheck]) -> str:
    bad = [
        f"{c.record.purpose} {c.status}"
        for c in checks
        if c.record.purpose in REQUIRED_PURPOSES and not c.ok
    ]
    return "; ".join(bad) if bad else "all required records ok"


def publish_domain(domain_id: int, *, tenant: Tenant) -> list[PublishOutcome] | None:
    """Publish the domain's records through settings.DNS_PROVIDER, then ask for a check."""
    _in_schema(tenant)
    domain = SendingDomain.objects.filter(pk=domain_id).first()
    if domain is None:
        return None
    records = expected_records(domain, tenant=tenant)
    provider = provider_from_settings()
    try:
        outcomes = provider.publish(domain.name, records)
        if isinstance(provider, LocalDnsProvider) and not sending_ips_for(tenant):
            # The sandbox is the whole offline DNS: publish the platform's SPF include too, so
            # the domain's SPF resolves fully. Loopback is what the local VPS provider hands out.
            include = settings.SENDING_SPF_INCLUDE
            spf = DnsRecord(RecordType.TXT, include, "v=spf1 ip4:127.0.0.1 ~all", RecordPurpose.SPF)
            provider.publish(include, [spf])
    except DnsProviderError as exc:
        if exc.permanent:
            raise DnsPublishFailed(f"Publishing {domain.name} failed: {exc.message}") from None
        raise DnsPublishRetry(exc.message) from None
    audit(
        "domain.published",
        tenant=tenant,
        domain=domain.name,
        domain_id=domain.pk,
        provider=getattr(provider, "key", type(provider).__name__),
        actions={o.record.purpose: o.action for o in outcomes},
    )
    request_check(domain, tenant=tenant, reason=f"published ({getattr(provider, 'key', '')})")
    return outcomes


def remove_domain(principal: Principal, domain: SendingDomain) -> None:
    """Delete the domain and enqueue removing its records from the DNS provider."""
    require(principal, Area.DOMAINS, Level.WRITE)
    tenant = principal.tenant
    _in_schema(tenant)
    with transaction.atomic():
        locked = SendingDomain.objects.select_for_update().filter(pk=domain.pk).first()
        if locked is None:
            raise NotFound("No such domain.")
        # PTRs belong to the tenant's IPs, shared by all its domains: they stay.
        records = [
            _record_payload(r)
            for r in expected_records(locked, tenant=tenant)
            if r.purpose != RecordPurpose.PTR
        ]
        audit(
            "domain.removed",
            tenant=tenant,
            actor=_actor(principal),
            domain=locked.name,
            domain_id=locked.pk,
        )
        enqueue(UNPUBLISH_TASK, {"name": locked.name, "records": records}, tenant=tenant)
        locked.delete()
        request_postfix_render(tenant)


def unpublish_records(name: str, records: list[dict[str, Any]]) -> None:
    """Remove a deleted domain's records from the provider (the manual provider does nothing)."""
    parsed = [
        DnsRecord(
            RecordType(r["type"]),
            r["name"],
            r["value"],
            RecordPurpose(r["purpose"]),
            priority=r.get("priority"),
            ttl=r.get("ttl", 3600),
        )
        for r in records
    ]
    try:
        provider_from_settings().unpublish(name, parsed)
    except DnsProviderError as exc:
        if exc.permanent:
            raise DnsPublishFailed(f"Removing {name}'s records failed: {exc.message}") from None
        raise DnsPublishRetry(exc.message) from None
