"""Sender-level counts and rates (docs/inbound.md, "Rates"): `SenderDailyStat`, one row per
mailbox, sending IP and UTC day, with its domain. Written by `add` in the caller's transaction
(campaigns' `stats.bump` calls it beside the campaign rollups), with the platform's own daily
counts (`penguinmails.indexes.bump_platform_daily`). Read by `sender_figures` (per mailbox,
domain or IP) for the dashboard, the API and automatic protection."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass

from django.db import connection
from django.db.models import Q, Sum

from deliverability.models import Mailbox, SenderDailyStat, SendingDomain
from infrastructure.models import SenderIpBinding
from penguinmails import indexes
from tenants.models import Tenant

COUNTERS = ("sent", "bounced", "complained", "replied")
GROUPS = ("mailbox", "domain", "ip")


@dataclass(frozen=True)
class SenderBump:
    """One increment of `counter` for `mailbox_id` on `day`."""

    mailbox_id: int
    day: dt.date
    counter: str
    by: int = 1


@dataclass
class SenderFigures:
    """Counts over a window and their rates (fractions, None when the base is 0).

    bounce_rate = bounced / (sent + bounced): a message refused at SMTP time is only `bounced`;
    complaint_rate and reply_rate = of `sent`."""

    sent: int = 0
    bounced: int = 0
    complained: int = 0
    replied: int = 0

    @property
    def sends(self) -> int:
        return self.sent + self.bounced

    @property
    def bounce_rate(self) -> float | None:
        return round(self.bounced / self.sends, 4) if self.sends else None

    @property
    def complaint_rate(self) -> float | None:
        return round(self.complained / self.sent, 4) if self.sent else None

    @property
    def reply_rate(self) -> float | None:
        return round(self.replied / self.sent, 4) if self.sent else None

    def as_dict(self) -> dict[str, int | float | None]:
        body: dict[str, int | float | None] = dict(asdict(self))
        body |= {
            "bounce_rate": self.bounce_rate,
            "complaint_rate": self.complaint_rate,
            "reply_rate": self.reply_rate,
        }
        return body


def current_tenant() -> Tenant | None:
    """The tenant whose schema is active (jobs run with django-tenants' FakeTenant: looked up
    by schema name), None in public."""
    tenant = getattr(connection, "tenant", None)
    if tenant is None or isinstance(tenant, Tenant):
        return tenant
    schema = getattr(tenant, "schema_name", None)
    return Tenant.objects.filter(schema_name=schema).first() if schema else None


def _senders(
    mailbox_ids: Collection[int], tenant: Tenant | None
) -> dict[int, tuple[int | None, str]]:
    """Each mailbox's (domain id, sending IP) now: the domain by the address's domain part, the
    IP by infrastructure's binding of the address, else of '@domain' (connected mailboxes have
    none: '')."""
    addresses = dict(Mailbox.objects.filter(pk__in=mailbox_ids).values_list("pk", "address"))
    names = {a.rpartition("@")[2] for a in addresses.values()}
    domains = dict(SendingDomain.objects.filter(name__in=names).values_list("name", "pk"))
    bound: dict[str, str] = {}
    if tenant is not None:
        senders = set(addresses.values()) | {f"@{n}" for n in names}
        bound = {
            s: str(a or "")
            for s, a in SenderIpBinding.objects.filter(
                tenant_id=tenant.pk, sender__in=senders
            ).values_list("sender", "ip__address")
        }
    out: dict[int, tuple[int | None, str]] = {}
    for pk, address in addresses.items():
        name = address.rpartition("@")[2]
        out[pk] = (domains.get(name), bound.get(address) or bound.get(f"@{name}") or "")
    return out


def add(increments: Iterable[SenderBump]) -> int:
    """Add every increment to the sender rollups and the platform's daily counts, in the caller's
    transaction and the current tenant schema (one upsert). Returns the rows touched."""
    rows: dict[tuple[int, dt.date], Counter[str]] = {}
    for inc in increments:
        if inc.counter not in COUNTERS:
            raise ValueError(f"unknown sender counter {inc.counter!r}")
        if inc.by:
            rows.setdefault((inc.mailbox_id, inc.day), Counter())[inc.counter] += inc.by
    if not rows:
        return 0
    senders = _senders({m for m, _ in rows}, current_tenant())
    values: list[int | str | dt.date | None] = []
    placeholders = []
    platform: dict[dt.date, Counter[str]] = {}
    for (mailbox_id, day), counts in sorted(rows.items()):
        if mailbox_id not in senders:
            continue  # deleted meanwhile
        domain_id, ip = senders[mailbox_id]
        placeholders.append("(" + ", ".join(["%s"] * (4 + len(COUNTERS))) + ")")
        values.extend([mailbox_id, domain_id, ip, day])
        values.extend(counts.get(name, 0) for name in COUNTERS)
        platform.setdefault(day, Counter()).update(counts)
    if not placeholders:
        return 0
    columns = ", ".join(COUNTERS)
    updates = ", ".join(f"{n} = s.{n} + EXCLUDED.{n}" for n in COUNTERS)
    sql = (
        "INSERT INTO deliverability_senderdailystat AS s "  # noqa: S608 - names are constants
        f"(mailbox_id, domain_id, ip, day, {columns}) VALUES {', '.join(placeholders)} "
        f"ON CONFLICT (mailbox_id, ip, day) DO UPDATE SET {updates}, domain_id = EXCLUDED.domain_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    for day, counts in platform.items():
        indexes.bump_platform_daily(
            day,
            sent=counts["sent"],
            bounced=counts["bounced"],
            complained=counts["complained"],
            replied=counts["replied"],
        )
    return len(placeholders)


def _window(days: int | None, today: dt.date) -> Q:
    return Q() if days is None else Q(day__gte=today - dt.timedelta(days=days - 1))


def sender_figures(
    by: str, *, days: int | None = None, ids: Collection[int | str] | None = None
) -> dict[int | str, SenderFigures]:
    """Figures per mailbox id, domain id or IP over the last `days` UTC days (all time: None),
    in the current tenant schema. Keys absent from the rollups are absent here."""
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r}")
    field = {"mailbox": "mailbox_id", "domain": "domain_id", "ip": "ip"}[by]
    rows = SenderDailyStat.objects.filter(_window(days, dt.datetime.now(dt.UTC).date()))
    if ids is not None:
        rows = rows.filter(**{f"{field}__in": list(ids)})
    if by == "domain":
        rows = rows.exclude(domain_id=None)
    sums = rows.values(field).annotate(**{n: Sum(n) for n in COUNTERS}).order_by(field)
    return {r[field]: SenderFigures(**{n: r[n] or 0 for n in COUNTERS}) for r in sums}


def totals_since(field: str, key: int, since: dt.date) -> Mapping[dt.date, SenderFigures]:
    """One mailbox's or domain's figures per day from `since` (for protection's window)."""
    rows = (
        SenderDailyStat.objects.filter(**{field: key}, day__gte=since)
        .values("day")
        .annotate(**{n: Sum(n) for n in COUNTERS})
    )
    return {r["day"]: SenderFigures(**{n: r[n] or 0 for n in COUNTERS}) for r in rows}
