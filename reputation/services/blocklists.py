"""Blocklist checks of IPs (public) and sending domains (tenant schema), and the listing
lifecycle (docs/reputation.md, "Blocklists").

The API other code uses:
- `check_subjects(subjects)`: ask every enabled list about each subject, no records written
  (the `blacklists check` command);
- `check_ips(addresses)` / `check_domains(tenant)`: ask, record the verdicts, and act on them;
- `current_listings(ip=... | domain=..., tenant=...)`: the live listings of a subject;
- `due_ips()`: the live IP addresses whose check is due.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import DomainStatus, SendingDomain
from infrastructure.models import IpAddress, IpStatus
from infrastructure.services.states import transition_ip
from penguinmails.states import transition
from reputation.models import (
    Blocklist,
    BlocklistCheck,
    BlocklistKind,
    Listing,
    ListingStatus,
)
from reputation.services import blocklist_alerts
from reputation.services.blocklists_dns import Answer, Verdict, lookup, parse_resolver, subject_kind
from reputation.services.rescore import request_rescore
from tenants.models import Tenant

# IPs worth watching: those that send, and quarantined ones (to see them delisted).
CHECKED_IP_STATUSES = (IpStatus.ASSIGNED, IpStatus.WARMING, IpStatus.ACTIVE, IpStatus.QUARANTINED)
CHECKED_DOMAIN_STATUSES = (DomainStatus.VERIFIED, DomainStatus.FAILING)


@contextmanager
def public_schema() -> Iterator[None]:
    """Public rows (lists, IP listings) are read and written in public, also from a tenant."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        yield


def enabled_lists(kind: str) -> list[Blocklist]:
    with public_schema():
        return list(Blocklist.objects.filter(kind=kind, enabled=True).order_by("-weight", "name"))


def check_subjects(subjects: Iterable[str]) -> list[Answer]:
    """Every subject against every enabled list of its kind (BadSubject for a bad one)."""
    by_kind: dict[str, list[str]] = {}
    for subject in subjects:
        by_kind.setdefault(subject_kind(subject), []).append(subject.strip().lower())
    answers: list[Answer] = []
    for kind, items in by_kind.items():
        zones = [b.zone for b in enabled_lists(kind)]
        answers += lookup(
            items,
            zones,
            server=parse_resolver(settings.DNSBL_RESOLVER),
            timeout=settings.DNSBL_TIMEOUT,
            window=settings.DNSBL_WINDOW,
        )
    return answers


def current_listings(
    *, ip: str | None = None, domain: str | None = None, tenant: Tenant | None = None
) -> list[Listing]:
    """The live listings of an IP (public) or of a domain (in `tenant`'s schema)."""
    if ip is not None:
        with public_schema():
            return list(Listing.objects.filter(kind="ip", subject=ip, status="listed"))
    if domain is None or tenant is None:
        raise ValueError("Give ip=, or domain= with tenant=.")
    with schema_context(tenant.schema_name):
        return list(Listing.objects.filter(kind="domain", subject=domain.lower(), status="listed"))


def tenant_listings(tenant: Tenant, *, ips: bool = True, domains: bool = True) -> list[Listing]:
    """The live listings of the tenant's IPs and domains, newest first."""
    found: list[Listing] = []
    if ips:
        with public_schema():
            found += Listing.objects.filter(kind="ip", tenant_id=tenant.pk, status="listed")
    if domains:
        with schema_context(tenant.schema_name):
            found += Listing.objects.filter(kind="domain", status="listed")
    return sorted(found, key=lambda item: item.listed_at, reverse=True)


def _next_check(answers: list[Answer]) -> timedelta:
    if any(a.verdict == Verdict.UNKNOWN for a in answers):
        return timedelta(minutes=settings.BLOCKLIST_RETRY_MINUTES)
    hours = settings.BLOCKLIST_CHECK_HOURS
    if any(a.verdict == Verdict.LISTED for a in answers):
        hours = min(hours, settings.BLOCKLIST_LISTED_RECHECK_HOURS)
    # Jittered, so subjects added together drift apart over the day.
    return timedelta(hours=hours * random.uniform(0.75, 1.25))  # noqa: S311 - not security


def due_ips(*, limit: int = 5000) -> list[str]:
    """Live IP addresses never checked or due, oldest due first."""
    now = timezone.now()
    with public_schema():
        rows = IpAddress.objects.filter(status__in=CHECKED_IP_STATUSES, address__isnull=False)
        live = [str(address) for address in rows.values_list("address", flat=True)]
        due_at = dict(
            BlocklistCheck.objects.filter(kind="ip", subject__in=live).values_list(
                "subject", "next_check_at"
            )
        )
    due = [a for a in live if a not in due_at or due_at[a] <= now]
    return sorted(due, key=lambda a: (a in due_at, due_at.get(a, now)))[:limit]


def check_ips(addresses: Iterable[str]) -> dict[str, list[Answer]]:
    """Check these live IPs, record the verdicts and act on new listings and delistings."""
    with public_schema():
        ips = {
            str(ip.address): ip
            for ip in IpAddress.objects.select_related("tenant").filter(
                address__in=list(addresses), status__in=CHECKED_IP_STATUSES
            )
        }
    zones = {b.zone: b for b in enabled_lists(BlocklistKind.IP)}
    answers = _grouped(ips, zones)
    for address, ip in ips.items():
        with public_schema():
            record_ip_answers(ip, answers[address], zones)
    return answers


def check_domains(tenant: Tenant, *, only_due: bool = True) -> dict[str, list[Answer]]:
    """Check the tenant's verified sending domains (those due), record and notify."""
    now = timezone.now()
    with schema_context(tenant.schema_name):
        domains = {
            d.name: d for d in SendingDomain.objects.filter(status__in=CHECKED_DOMAIN_STATUSES)
        }
        if only_due:
            later = set(
                BlocklistCheck.objects.filter(
                    kind="domain", subject__in=list(domains), next_check_at__gt=now
                ).values_list("subject", flat=True)
            )
            domains = {name: d for name, d in domains.items() if name not in later}
    zones = {b.zone: b for b in enabled_lists(BlocklistKind.DOMAIN)}
    answers = _grouped(domains, zones)
    for name, domain in domains.items():
        with schema_context(tenant.schema_name):
            _record("domain", name, domain.pk, tenant, answers[name], zones, on_new=_domain_listed)
    return answers


def _grouped(
    subjects: Mapping[str, object], zones: dict[str, Blocklist]
) -> dict[str, list[Answer]]:
    grouped: dict[str, list[Answer]] = {s: [] for s in subjects}
    if not subjects or not zones:
        return grouped
    for answer in lookup(
        list(subjects),
        list(zones),
        server=parse_resolver(settings.DNSBL_RESOLVER),
        timeout=settings.DNSBL_TIMEOUT,
        window=settings.DNSBL_WINDOW,
    ):
        grouped[answer.subject].append(answer)
    return grouped


def record_ip_answers(ip: IpAddress, answers: list[Answer], zones: dict[str, Blocklist]) -> None:
    """Record one IP's verdicts (in public); quarantine and move it on a new listing, bring it
    back to warming when every list is clear and the quarantine was ours."""
    check = _record("ip", str(ip.address), ip.pk, ip.tenant, answers, zones, on_new=_ip_listed)
    live = Listing.objects.filter(kind="ip", subject=str(ip.address), status="listed").exists()
    if live or not check.quarantined or not _definitive(answers):
        return
    with transaction.atomic():
        ip = IpAddress.objects.select_for_update().get(pk=ip.pk)
        BlocklistCheck.objects.filter(pk=check.pk).update(quarantined=False)
        if ip.status == IpStatus.QUARANTINED:
            transition_ip(ip, IpStatus.WARMING, reason="delisted from every blocklist")
            blocklist_alerts.notify_delisted(ip)


def _definitive(answers: list[Answer]) -> bool:
    """Every list answered listed or clean: a refusal or a timeout proves no delisting."""
    return bool(answers) and all(a.verdict in (Verdict.LISTED, Verdict.CLEAN) for a in answers)


def _record(
    kind: str,
    subject: str,
    subject_id: int,
    tenant: Tenant,
    answers: list[Answer],
    zones: dict[str, Blocklist],
    *,
    on_new: object,
) -> BlocklistCheck:
    now = timezone.now()
    with transaction.atomic():
        check, _ = BlocklistCheck.objects.select_for_update().get_or_create(
            kind=kind, subject=subject, defaults={"subject_id": subject_id, "tenant_id": tenant.pk}
        )
        live = {
            listing.zone: listing
            for listing in Listing.objects.select_for_update().filter(
                kind=kind, subject=subject, status=ListingStatus.LISTED
            )
        }
        new: list[Listing] = []
        gone = 0
        for answer in answers:
            listing = live.get(answer.zone)
            if answer.verdict == Verdict.LISTED and listing is None:
                new.append(_new_listing(kind, subject, subject_id, tenant, answer, zones, now))
            elif answer.verdict == Verdict.LISTED and listing is not None:
                Listing.objects.filter(pk=listing.pk).update(last_seen_at=now)
            elif answer.verdict == Verdict.CLEAN and listing is not None:
                gone += 1
                transition(
                    listing,
                    ListingStatus.DELISTED,
                    reason="the list answers NXDOMAIN",
                    delisted_at=now,
                )
        BlocklistCheck.objects.filter(pk=check.pk).update(
            subject_id=subject_id,
            tenant_id=tenant.pk,
            last_checked_at=now,
            next_check_at=now + _next_check(answers),
            verdicts={a.zone: a.verdict.value for a in answers},
        )
        check.refresh_from_db()
        if new or gone:
            # The tenant's scores (and campaign allowance) follow now, not at night.
            request_rescore(tenant)
        if new and callable(on_new):
            on_new(check, subject_id, tenant, new, zones)
        elif (
            live
            and not Listing.objects.filter(
                kind=kind, subject=subject, status=ListingStatus.LISTED
            ).exists()
        ):
            blocklist_alerts.listing_cleared(kind, subject)
    return check


def _new_listing(
    kind: str,
    subject: str,
    subject_id: int,
    tenant: Tenant,
    answer: Answer,
    zones: dict[str, Blocklist],
    now: datetime,
) -> Listing:
    blocklist = zones.get(answer.zone)
    return Listing.objects.create(
        kind=kind,
        subject=subject,
        subject_id=subject_id,
        tenant_id=tenant.pk,
        zone=answer.zone,
        list_name=blocklist.name if blocklist else answer.zone,
        answer=", ".join(answer.codes)[:200],
        reason=answer.reason[:2000],
        listed_at=now,
        last_seen_at=now,
    )


def _ip_listed(
    check: BlocklistCheck,
    ip_id: int,
    tenant: Tenant,
    new: list[Listing],
    zones: dict[str, Blocklist],
) -> None:
    """A new listing: quarantine the IP, move its sending to a clean IP, tell tenant and staff."""
    ip = IpAddress.objects.select_related("tenant").get(pk=ip_id)
    moved_to = None
    if ip.status != IpStatus.QUARANTINED:
        reason = blocklist_alerts.quarantine_reason(new, zones)
        ip = blocklist_alerts.quarantine(ip, reason)
        BlocklistCheck.objects.filter(pk=check.pk).update(quarantined=True)
        moved_to = blocklist_alerts.move_sending(ip)
    blocklist_alerts.notify_listed(tenant, str(ip.address), new, zones, moved_to=moved_to)


def _domain_listed(
    check: BlocklistCheck,
    domain_id: int,
    tenant: Tenant,
    new: list[Listing],
    zones: dict[str, Blocklist],
) -> None:
    """A domain listing flags the domain (its live Listing) and notifies; nothing moves."""
    blocklist_alerts.notify_listed(tenant, new[0].subject, new, zones, moved_to=None)


def all_ip_listings() -> list[Listing]:
    """Every live IP listing (staff, commands), newest first."""
    with public_schema():
        return list(Listing.objects.filter(kind="ip", status="listed").order_by("-listed_at"))


def removal_urls() -> dict[str, str]:
    """Each list's zone -> where a listed owner asks for removal."""
    with public_schema():
        return dict(Blocklist.objects.values_list("zone", "removal_url"))
