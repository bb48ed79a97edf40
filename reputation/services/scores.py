"""The reputation monitor (docs/reputation.md, "Reputation score"): a score 0-100 per mailbox,
sending domain and IP of a tenant, from the last 7 days' warm-up placements (warmup), bounce and
complaint rates (deliverability's sender rollups), DNS health (the domain's SPF, DKIM and DMARC
verdicts; an IP's PTR) and live blocklist listings. The arithmetic is `reputation.scoring`.

- `score_tenant(tenant, day=...)`: compute and keep today's scores (one row per subject and day,
  recomputed in place), in the tenant's schema; feeds the IPs' `reputation_score`;
- `latest(kind=..., ids=...)`, `history(kind, subject_id, days)`, `worst_first(tenant)`: reads;
- `allowance_factors(ids, today)`: the provider registered with the capacity module
  (ReputationConfig.ready()): a low mailbox score lowers its campaign allowance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import DomainRecord, Mailbox, MailboxStatus, RecordStatus, SendingDomain
from deliverability.services.allowance import CapacityFactor
from deliverability.services.sender_stats import SenderFigures, sender_figures
from infrastructure.models import IpAddress, IpStatus, SenderIpBinding
from infrastructure.services.ip_scores import set_reputation_scores
from penguinmails.models import WarmupPoolMember
from reputation import conf, scoring
from reputation.models import Blocklist, ReputationScore, ScoreKind
from reputation.services.blocklists import public_schema, tenant_listings
from tenants.models import Tenant
from warmup.models import Placement, WarmupMessage

WINDOW_DAYS = 7


@dataclass
class _Facts:
    """Everything a tenant's scores are computed from, gathered in a fixed number of queries."""

    mailboxes: dict[int, str] = field(default_factory=dict)  # id -> address
    domains: dict[int, str] = field(default_factory=dict)  # id -> name
    ips: dict[int, tuple[str, bool]] = field(default_factory=dict)  # id -> (address, PTR set)
    mailbox_ip: dict[int, str] = field(default_factory=dict)
    placed: dict[int, Counter[str]] = field(default_factory=dict)  # mailbox -> {inbox, spam}
    figures: dict[str, dict[int | str, SenderFigures]] = field(default_factory=dict)
    dns: dict[int, dict[str, bool]] = field(default_factory=dict)  # domain id -> purpose -> ok
    listed: dict[str, list[scoring.Listed]] = field(default_factory=dict)  # subject -> listings


def _since(day: date) -> datetime:
    return datetime.combine(day - timedelta(days=WINDOW_DAYS - 1), time(0), tzinfo=UTC)


def _dns(domain_ids: Collection[int]) -> dict[int, dict[str, bool]]:
    """Each domain's SPF, DKIM and DMARC: verifies when every record of that purpose is OK."""
    out: dict[int, dict[str, bool]] = {pk: {} for pk in domain_ids}
    rows = DomainRecord.objects.filter(
        domain_id__in=list(domain_ids), purpose__in=scoring.DNS_RECORDS
    ).values_list("domain_id", "purpose", "status")
    for domain_id, purpose, status in rows:
        ok = status == RecordStatus.OK
        out[domain_id][purpose] = out[domain_id].get(purpose, True) and ok
    return out


def _mailbox_ips(tenant: Tenant, addresses: Mapping[int, str]) -> dict[int, str]:
    """The IP each mailbox sends from: infrastructure's binding of its address, else of its
    domain, else the pool index's (its mail server's primary IP); absent for connected ones."""
    names = {a.rpartition("@")[2] for a in addresses.values()}
    senders = set(addresses.values()) | {f"@{n}" for n in names}
    bound = dict(
        SenderIpBinding.objects.filter(tenant_id=tenant.pk, sender__in=senders).values_list(
            "sender", "ip__address"
        )
    )
    pooled = dict(
        WarmupPoolMember.objects.filter(tenant_id=tenant.pk, mailbox_id__in=list(addresses))
        .exclude(ip=None)
        .values_list("mailbox_id", "ip")
    )
    out: dict[int, str] = {}
    for pk, address in addresses.items():
        ip = bound.get(address) or bound.get(f"@{address.rpartition('@')[2]}") or pooled.get(pk)
        if ip:
            out[pk] = str(ip)
    return out


def _listed(tenant: Tenant) -> dict[str, list[scoring.Listed]]:
    with public_schema():
        weights = dict(Blocklist.objects.values_list("zone", "weight"))
    out: dict[str, list[scoring.Listed]] = {}
    for row in tenant_listings(tenant):
        item = scoring.Listed(row.list_name, weights.get(row.zone, 50), row.subject)
        out.setdefault(row.subject, []).append(item)
    return out


def _gather(tenant: Tenant, day: date) -> _Facts:
    facts = _Facts()
    facts.mailboxes = dict(
        Mailbox.objects.exclude(status=MailboxStatus.DISABLED).values_list("pk", "address")
    )
    facts.domains = dict(SendingDomain.objects.values_list("pk", "name"))
    facts.ips = {
        pk: (str(address), bool(ptr))
        for pk, address, ptr in IpAddress.objects.filter(tenant_id=tenant.pk, address__isnull=False)
        .exclude(status__in=[IpStatus.RELEASED, IpStatus.REQUESTED, IpStatus.AWAITING_ORDER])
        .values_list("pk", "address", "ptr_set")
    }
    facts.mailbox_ip = _mailbox_ips(tenant, facts.mailboxes)
    placed = (
        WarmupMessage.objects.filter(
            placed_at__gte=_since(day), placement__in=[Placement.INBOX, Placement.SPAM]
        )
        .values("mailbox_id", "placement")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in placed:
        facts.placed.setdefault(row["mailbox_id"], Counter())[row["placement"]] += row["n"]
    facts.figures = {by: sender_figures(by, days=WINDOW_DAYS) for by in ("mailbox", "domain", "ip")}
    facts.dns = _dns(facts.domains)
    facts.listed = _listed(tenant)
    return facts


def _evidence(
    facts: _Facts,
    figures: SenderFigures | None,
    mailbox_ids: Collection[int],
    *,
    dns: dict[str, bool] | None = None,
    ptr: bool | None = None,
    listings: Sequence[scoring.Listed] = (),
) -> scoring.Evidence:
    placed: Counter[str] = Counter()
    for pk in mailbox_ids:
        placed.update(facts.placed.get(pk, Counter()))
    figures = figures or SenderFigures()
    return scoring.Evidence(
        inbox=placed[Placement.INBOX],
        spam=placed[Placement.SPAM],
        sent=figures.sent,
        bounced=figures.bounced,
        complained=figures.complained,
        dns=dns,
        ptr=ptr,
        listings=listings,
    )


@dataclass(frozen=True)
class Scored:
    kind: str
    subject_id: int
    subject: str
    result: scoring.Score


def compute(tenant: Tenant, day: date) -> list[Scored]:
    """Every subject's score for `day` (not kept). Call it in the tenant's schema."""
    facts = _gather(tenant, day)
    domain_of = {name: pk for pk, name in facts.domains.items()}
    out: list[Scored] = []
    for pk, address in sorted(facts.mailboxes.items()):
        name = address.rpartition("@")[2]
        domain_id = domain_of.get(name)
        ip = facts.mailbox_ip.get(pk, "")
        listed = facts.listed.get(name, []) + (facts.listed.get(ip, []) if ip else [])
        evidence = _evidence(
            facts, facts.figures["mailbox"].get(pk), [pk],
            dns=facts.dns.get(domain_id) if domain_id else None, listings=listed,
        )  # fmt: skip
        out.append(Scored(ScoreKind.MAILBOX, pk, address, scoring.score(evidence)))
    for pk, name in sorted(facts.domains.items()):
        members = [m for m, a in facts.mailboxes.items() if a.rpartition("@")[2] == name]
        evidence = _evidence(
            facts, facts.figures["domain"].get(pk), members,
            dns=facts.dns.get(pk, {}), listings=facts.listed.get(name, []),
        )  # fmt: skip
        out.append(Scored(ScoreKind.DOMAIN, pk, name, scoring.score(evidence)))
    for pk, (address, ptr) in sorted(facts.ips.items()):
        members = [m for m, ip in facts.mailbox_ip.items() if ip == address]
        evidence = _evidence(
            facts, facts.figures["ip"].get(address), members,
            ptr=ptr, listings=facts.listed.get(address, []),
        )  # fmt: skip
        out.append(Scored(ScoreKind.IP, pk, address, scoring.score(evidence)))
    return out


def score_tenant(tenant: Tenant, *, day: date | None = None) -> list[ReputationScore]:
    """Compute and keep `day`'s (default today, UTC) scores of the tenant's mailboxes, domains
    and IPs: one row per subject and day, replaced when recomputed. Atomic."""
    day = day or timezone.now().astimezone(UTC).date()
    now = timezone.now()
    with schema_context(tenant.schema_name):
        scored = compute(tenant, day)
        rows = [
            ReputationScore(
                kind=s.kind, subject_id=s.subject_id, subject=s.subject, day=day,
                score=s.result.score, parts=s.result.parts_json(), computed_at=now,
            )
            for s in scored
        ]  # fmt: skip
        with transaction.atomic():
            ReputationScore.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["kind", "subject_id", "day"],
                update_fields=["subject", "score", "parts", "computed_at"],
            )
    ip_scores = {s.subject_id: s.result.score for s in scored if s.kind == ScoreKind.IP}
    if ip_scores:
        set_reputation_scores(tenant, ip_scores)
    return rows


def latest(
    kind: str, ids: Collection[int] | None = None, *, since: date | None = None
) -> dict[int, ReputationScore]:
    """The latest kept score of each subject of `kind` (optionally only `ids`, only from
    `since`), one query. Call it in the tenant's schema."""
    rows = ReputationScore.objects.filter(kind=kind)
    if ids is not None:
        rows = rows.filter(subject_id__in=list(ids))
    if since is not None:
        rows = rows.filter(day__gte=since)
    rows = rows.order_by("subject_id", "-day").distinct("subject_id")
    return {row.subject_id: row for row in rows}


def history(kind: str, subject_id: int, *, days: int = 30) -> list[ReputationScore]:
    """One subject's daily scores over the last `days` days, oldest first."""
    since = timezone.now().astimezone(UTC).date() - timedelta(days=days - 1)
    return list(
        ReputationScore.objects.filter(kind=kind, subject_id=subject_id, day__gte=since).order_by(
            "day"
        )
    )


@dataclass(frozen=True)
class Overview:
    """The deliverability overview's rows, worst first within each kind."""

    mailboxes: list[ReputationScore]
    domains: list[ReputationScore]
    ips: list[ReputationScore]


def worst_first(tenant: Tenant, *, ips: bool = True) -> Overview:
    """Each subject's latest score, worst first (mailboxes and domains that still exist, the
    tenant's IPs that are not released). Call it in the tenant's schema."""
    mailbox_ids = set(Mailbox.objects.values_list("pk", flat=True))
    domain_ids = set(SendingDomain.objects.values_list("pk", flat=True))
    ip_ids: set[int] = set()
    if ips:
        ip_ids = set(
            IpAddress.objects.filter(tenant_id=tenant.pk)
            .exclude(status=IpStatus.RELEASED)
            .values_list("pk", flat=True)
        )

    def ordered(kind: str, keep: set[int]) -> list[ReputationScore]:
        found = [row for pk, row in latest(kind, keep).items() if pk in keep]
        return sorted(found, key=lambda row: (row.score, row.subject))

    return Overview(
        ordered(ScoreKind.MAILBOX, mailbox_ids),
        ordered(ScoreKind.DOMAIN, domain_ids),
        ordered(ScoreKind.IP, ip_ids),
    )


def allowance_factors(mailbox_ids: Collection[int], today: date) -> Mapping[int, CapacityFactor]:
    """The capacity module's factor provider: each mailbox whose latest score (no older than
    REPUTATION_FRESH_DAYS) is under REPUTATION_FULL_SCORE keeps only a share of its campaign
    allowance, and the explanation says so ("reputation 62: allowance x0.6")."""
    since = today - timedelta(days=conf.FRESH_DAYS)
    out: dict[int, CapacityFactor] = {}
    for pk, row in latest(ScoreKind.MAILBOX, mailbox_ids, since=since).items():
        share = scoring.allowance_share(row.score)
        if share < 1:
            out[pk] = CapacityFactor(share, scoring.allowance_note(row.score, share))
    return out


__all__ = [
    "Overview",
    "allowance_factors",
    "compute",
    "history",
    "latest",
    "score_tenant",
    "worst_first",
]
