"""The day's plan (docs/warmup.md, "The day's plan").

`plan_day` (public, a beat job at 12:05 UTC for the next day) reads the pool's public index,
pairs every active member (warmup.planner.pair) and enqueues one `warmup.plan_tenant` job per
tenant with its mailboxes' partners: no loop over tenant schemas. `write_day` (that job, in the
tenant's schema) turns them into scheduled WarmupMessage rows: each mailbox's volume from its
ramp (warmup.ramp) and campaign activity, no more than its daily limit, its IP's ramp shared
by the mailboxes on it, spread over the working hours of the mailbox's timezone, text from the
corpus, the tagged Message-ID. Planning a day twice writes nothing twice.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.services.dunning import sending_paused
from deliverability.models import Mailbox, MailboxStatus
from infrastructure.models import IpAddress, IpStatus
from penguinmails import indexes, states
from penguinmails.queue.producer import JobSpec, enqueue_many
from tenants.models import Tenant
from warmup import compose, conf, planner, ramp, tag
from warmup.models import (
    WarmupMessage,
    WarmupMessageKind,
    WarmupMessageStatus,
    WarmupPlan,
    WarmupStatus,
)
from warmup.services.pool import RUNNING

PLAN_DAY_TASK = "warmup.plan_day"
PLAN_TENANT_TASK = "warmup.plan_tenant"

# One tenant's part of the day: [mailbox id, pool member id, ip or None, [partner member ids]].
Entry = tuple[int, int, str | None, list[int]]


def next_day(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date() + timedelta(days=1)


def pair_pool(rng: random.Random) -> dict[int, list[Entry]]:
    """The whole active pool paired: tenant id -> its entries."""
    rows = indexes.active_pool()
    members = [planner.Member(m, t, d, ip) for m, t, _, _, d, ip in rows]
    pairs = planner.pair(members, conf.PARTNERS, rng)
    by_tenant: dict[int, list[Entry]] = defaultdict(list)
    for member_id, tenant_id, mailbox_id, _, _, ip in rows:
        by_tenant[tenant_id].append((mailbox_id, member_id, ip, pairs.get(member_id, [])))
    return by_tenant


def plan_day(day: date | None = None, *, seed: int | None = None) -> int:
    """Pair the pool for `day` (default: tomorrow, UTC) and enqueue one job per tenant; returns
    how many members were paired."""
    day = day or next_day()
    by_tenant = pair_pool(random.Random(seed))
    tenants = Tenant.objects.filter(pk__in=list(by_tenant))
    with transaction.atomic():
        enqueue_many(
            JobSpec(
                PLAN_TENANT_TASK,
                {"day": day.isoformat(), "entries": by_tenant[t.pk]},
                t,
                priority=conf.PRIORITY,
                idempotency_key=f"warmup.plan:{t.pk}:{day.isoformat()}",
            )
            for t in tenants
        )
    return sum(len(entries) for entries in by_tenant.values())


# --- one tenant's day ----------------------------------------------------------------------------
def campaign_sends(mailboxes: Sequence[Mailbox], day: date) -> dict[int, int]:
    """What each mailbox sent for campaigns on its counter's last day, when that day is `day`
    or the day before: its counter less the warm-up messages it sent that day (the counter is
    shared, docs/warmup.md "Volume control"). Campaigns run when this is above 0."""
    recent = {m.pk: m for m in mailboxes if m.sent_on and m.sent_on >= day - timedelta(days=1)}
    if not recent:
        return {}
    since = datetime.combine(day - timedelta(days=1), time(0), tzinfo=UTC)
    rows = (
        WarmupMessage.objects.filter(
            mailbox_id__in=list(recent), status=WarmupMessageStatus.SENT, sent_at__gte=since
        )
        .annotate(on=TruncDate("sent_at", tzinfo=UTC))
        .values_list("mailbox_id", "on")
        .annotate(n=Count("id"))
    )
    warm = {(m, on): n for m, on, n in rows}
    return {pk: max(0, m.sent_today - warm.get((pk, m.sent_on), 0)) for pk, m in recent.items()}


def share_ips(
    volumes: dict[int, int], ips: Mapping[int, str | None], campaign: Mapping[int, int], day: date
) -> dict[int, int]:
    """Each IP's ramp (warmup.ramp.ip_volume from the IP's first day with us), less its
    mailboxes' campaign sends, shared by its mailboxes' warm-up in proportion to their volume."""
    on_ip: dict[str, list[int]] = defaultdict(list)
    for mailbox_id, ip in ips.items():
        if ip and mailbox_id in volumes:
            on_ip[ip].append(mailbox_id)
    first = dict(
        IpAddress.objects.filter(address__in=list(on_ip))
        .exclude(status=IpStatus.RELEASED)
        .values_list("address", "created_at")
    )
    out = dict(volumes)
    for ip, ids in on_ip.items():
        started = first.get(ip)
        if started is None:
            continue
        room = ramp.ip_volume(started.date(), day) - sum(campaign.get(m, 0) for m in ids)
        total = sum(volumes[m] for m in ids)
        if total > max(0, room):
            for m in ids:
                out[m] = volumes[m] * max(0, room) // total
    return out


def _planned(mailbox_ids: list[int], day: date, plans: Mapping[int, WarmupPlan]) -> set[int]:
    """Mailboxes that already have messages of `day` (in their timezone)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    rows = WarmupMessage.objects.filter(
        mailbox_id__in=mailbox_ids,
        kind=WarmupMessageKind.MESSAGE,
        scheduled_at__gte=start - timedelta(days=1),
        scheduled_at__lt=start + timedelta(days=2),
    ).values_list("mailbox_id", "scheduled_at")
    return {m for m, at in rows if at.astimezone(ZoneInfo(plans[m].timezone)).date() == day}


def _volumes(
    plans: Mapping[int, WarmupPlan], day: date, campaign: Mapping[int, int], *, held: bool
) -> dict[int, int]:
    """Each mailbox's warm-up volume; `held`: the tenant's payment is overdue and its sending
    paused (billing's dunning): warm-up goes on at maintenance level, as beside a campaign."""
    return {
        m: min(
            ramp.daily_volume(p, day, campaigns_running=held or campaign.get(m, 0) > 0),
            p.mailbox.daily_limit,
        )
        for m, p in plans.items()
    }


def _to_maintenance(plans: Mapping[int, WarmupPlan], day: date) -> None:
    for plan in plans.values():
        if plan.status == WarmupStatus.WARMING and ramp.ramp_volume(plan, day) >= plan.target:
            states.transition(plan, WarmupStatus.MAINTENANCE, reason=f"target reached on {day}")


def write_day(day: date, entries: Sequence[Entry], *, seed: int | None = None) -> int:
    """Write this tenant's scheduled messages of `day`; returns how many. In the tenant's
    schema."""
    rng = random.Random(seed)
    by_mailbox = {int(e[0]): e for e in entries}
    plans = {
        p.mailbox_id: p
        for p in WarmupPlan.objects.filter(
            mailbox_id__in=list(by_mailbox),
            status__in=RUNNING,
            mailbox__status=MailboxStatus.ACTIVE,
        ).select_related("mailbox")
    }
    for done in _planned(list(plans), day, plans):
        plans.pop(done)
    campaign = campaign_sends([p.mailbox for p in plans.values()], day)
    held = sending_paused(getattr(connection, "schema_name", ""))
    volumes = share_ips(
        _volumes(plans, day, campaign, held=held),
        {m: by_mailbox[m][2] for m in plans},
        campaign,
        day,
    )
    wanted = {m: planner.partners_for(list(by_mailbox[m][3]), v) for m, v in volumes.items()}
    addresses = indexes.pool_addresses({p for ps in wanted.values() for p in ps}, active_only=True)
    rows = []
    for mailbox_id, partners in wanted.items():
        plan, member_id = plans[mailbox_id], int(by_mailbox[mailbox_id][1])
        partners = [p for p in partners if p in addresses]
        times = planner.spread(
            day, plan.timezone, len(partners), rng,
            start_hour=conf.DAY_START_HOUR, end_hour=conf.DAY_END_HOUR,
        )  # fmt: skip
        mailbox = plan.mailbox
        domain = mailbox.address.rpartition("@")[2]
        for partner, at in zip(partners, times, strict=True):
            text = compose.write(addresses[partner], mailbox.display_name or mailbox.address, rng)
            rows.append(
                WarmupMessage(
                    mailbox=mailbox,
                    kind=WarmupMessageKind.MESSAGE,
                    to_member_id=partner,
                    to_address=addresses[partner],
                    subject=text.subject,
                    body=text.body,
                    message_id=tag.make_message_id(member_id, domain),
                    scheduled_at=at,
                )  # fmt: skip
            )
    with transaction.atomic():
        WarmupMessage.objects.bulk_create(rows, batch_size=1000)
        _to_maintenance(plans, day)
    return len(rows)


__all__ = [
    "PLAN_DAY_TASK",
    "PLAN_TENANT_TASK",
    "campaign_sends",
    "next_day",
    "pair_pool",
    "plan_day",
    "share_ips",
    "write_day",
]
