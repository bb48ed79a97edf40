"""A sending domain's DNS records: the spec from the tenant's sending IPs and their reverse
names, the records it must publish now, and their stored verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.utils import timezone

from deliverability.dns.records import (
    DnsRecord,
    DomainDnsSpec,
    RecordPurpose,
    generate_domain_records,
)
from deliverability.dns.verify import RecordCheck
from deliverability.models import DomainRecord, RecordStatus, SendingDomain
from infrastructure.services.ips import sending_ip_names, sending_ips
from tenants.models import Tenant

# These decide verified/failing. PTR is set at the VPS provider and the DMARC report
# authorisation lives in the platform's zone: shown and checked, but not the tenant's to fix.
REQUIRED_PURPOSES = frozenset(
    {
        RecordPurpose.MX,
        RecordPurpose.SPF,
        RecordPurpose.DKIM,
        RecordPurpose.DMARC,
        RecordPurpose.TRACKING,
    }
)


def sending_ips_for(tenant: Tenant) -> list[str]:
    """The tenant's sending IPv4s, which SPF lists and PTR expects.

    A tenant without IPs of its own yet (nothing provisioned, or a plan without dedicated IPs)
    gets none: SPF then authorises the platform through `include:SENDING_SPF_INCLUDE`, a record
    the platform keeps listing all its sending IPs.
    """
    return sending_ips(tenant)


def dns_spec(
    domain: SendingDomain, *, ips: list[str], ptr_names: Mapping[str, str] | None = None
) -> DomainDnsSpec:
    """An IP missing from `ptr_names` expects SENDING_MAIL_HOST as its reverse name."""
    return DomainDnsSpec(
        domain=domain.name,
        mail_host=settings.SENDING_MAIL_HOST,
        sending_ips=ips,
        dkim_selector=domain.dkim_selector,
        dkim_public_key=domain.dkim_public_key,
        dmarc_rua=domain.dmarc_rua,
        tracking_host=domain.tracking_host,
        tracking_target=settings.TRACKING_CNAME_TARGET,
        spf_includes=() if ips else (settings.SENDING_SPF_INCLUDE,),
        ptr_names=dict(ptr_names or {}),
    )


def _spec_for(domain: SendingDomain, tenant: Tenant) -> DomainDnsSpec:
    """PTR from one source: each IP's reverse name as infrastructure set it (the mail server
    sending from it), so the domain page expects what the infrastructure page shows."""
    names = sending_ip_names(tenant)
    return dns_spec(domain, ips=list(names), ptr_names=names)


def expected_records(domain: SendingDomain, *, tenant: Tenant) -> list[DnsRecord]:
    """The records the domain must publish now (regenerated: the tenant's IPs may change)."""
    return generate_domain_records(_spec_for(domain, tenant))


def _store_records(
    domain: SendingDomain, records: list[DnsRecord], checks: list[RecordCheck]
) -> None:
    verdicts = {id(c.record): c for c in checks}
    now = timezone.now()
    rows = []
    for position, rec in enumerate(records):
        check = verdicts.get(id(rec))
        rows.append(
            DomainRecord(
                domain=domain,
                position=position,
                purpose=rec.purpose,
                type=rec.type,
                name=rec.name,
                value=rec.value,
                priority=rec.priority,
                ttl=rec.ttl,
                note=rec.note[:300],
                required=rec.purpose in REQUIRED_PURPOSES,
                status=RecordStatus(check.status) if check else RecordStatus.NOT_CHECKED,
                found=list(check.found) if check else [],
                fix=check.message if check and not check.ok else "",
                checked_at=now if check else None,
            )
        )
    DomainRecord.objects.filter(domain=domain).delete()
    DomainRecord.objects.bulk_create(rows)


def _record_payload(record: DnsRecord) -> dict[str, Any]:
    return {k: str(v) if k in ("type", "purpose") else v for k, v in asdict(record).items()}
