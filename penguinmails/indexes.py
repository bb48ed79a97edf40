"""The public indexes of tenant work (docs/sending.md, "Who writes what"): the only writer of
`running_campaigns` (RunningCampaign: the scheduler's list of running campaigns and its next
visit), `scheduled_campaigns` (ScheduledCampaign: campaigns waiting for their start time) and
`mailbox_polls` (MailboxPoll: the inbound poller's mailboxes, their next poll and back-off;
written by deliverability's mailbox moves and the poller, docs/inbound.md) and `warmup_pool`
(WarmupPoolMember: the warm-up pool across tenants, written by the warmup app's opt-in, opt-out,
pause and resume and by mailbox moves, docs/warmup.md).

The campaigns app calls these in the same transaction as the change that causes them (a tenant
schema's transaction can write public tables: one database, one connection). Writes are
set-based where the caller has a set; the reads answer the beat entries without a loop over
every tenant schema.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils import timezone

from penguinmails.models import (
    MailboxPoll,
    PlatformDailyStat,
    RunningCampaign,
    ScheduledCampaign,
    WarmupPoolMember,
)


# --- running ---------------------------------------------------------------------------------
def index_running(tenant_id: int, campaign_id: int, *, next_run_at: datetime) -> None:
    """Put a running campaign in the index (or move its next visit when already there)."""
    RunningCampaign.objects.update_or_create(
        tenant_id=tenant_id, campaign_id=campaign_id, defaults={"next_run_at": next_run_at}
    )


def unindex_running(tenant_id: int, campaign_id: int) -> int:
    """Take a campaign out of the running index; returns how many rows went (0 or 1)."""
    deleted, _ = RunningCampaign.objects.filter(
        tenant_id=tenant_id, campaign_id=campaign_id
    ).delete()
    return deleted


def set_next_run(tenant_id: int, campaign_ids: Collection[int], at: datetime) -> int:
    """Move the scheduler's next visit of these indexed campaigns to `at`, in one statement;
    campaigns not in the index are left out. Returns how many rows moved."""
    if not campaign_ids:
        return 0
    return RunningCampaign.objects.filter(
        tenant_id=tenant_id, campaign_id__in=list(campaign_ids)
    ).update(next_run_at=at)


def due_running_tenants(moment: datetime) -> list[int]:
    """Ids of the tenants with a running campaign due at `moment`, sorted."""
    rows = RunningCampaign.objects.filter(next_run_at__lte=moment).values_list(
        "tenant_id", flat=True
    )
    return sorted(set(rows))


def running_campaigns(tenant_id: int, *, due_at: datetime | None = None) -> list[int]:
    """Ids of the tenant's indexed running campaigns (those due at `due_at`, when given), sorted."""
    rows = RunningCampaign.objects.filter(tenant_id=tenant_id)
    if due_at is not None:
        rows = rows.filter(next_run_at__lte=due_at)
    return sorted(rows.values_list("campaign_id", flat=True))


# --- scheduled -------------------------------------------------------------------------------
def index_scheduled(tenant_id: int, campaign_id: int, *, start_at: datetime) -> None:
    """Put a scheduled campaign in the index with its start time (or move its start time)."""
    ScheduledCampaign.objects.update_or_create(
        tenant_id=tenant_id, campaign_id=campaign_id, defaults={"start_at": start_at}
    )


def unindex_scheduled(tenant_id: int, campaign_id: int) -> int:
    """Take a campaign out of the scheduled index; returns how many rows went (0 or 1)."""
    deleted, _ = ScheduledCampaign.objects.filter(
        tenant_id=tenant_id, campaign_id=campaign_id
    ).delete()
    return deleted


def due_scheduled(moment: datetime, *, tenant_status: str | None = None) -> list[ScheduledCampaign]:
    """The scheduled campaigns whose start time has come at `moment`, oldest start first, with
    their tenant loaded; only tenants in `tenant_status` when given (a read)."""
    rows: QuerySet[ScheduledCampaign] = ScheduledCampaign.objects.filter(start_at__lte=moment)
    if tenant_status is not None:
        rows = rows.filter(tenant__status=tenant_status)
    return list(rows.select_related("tenant").order_by("start_at", "id"))


# --- mailboxes to poll (docs/inbound.md, "Reading mailboxes") -----------------------------------
def index_mailbox(tenant_id: int, mailbox_id: int, *, reset: bool = False) -> None:
    """Put a mailbox in the poll index, due now. An indexed mailbox keeps its next visit and
    back-off unless `reset` (it became active: poll it now, failures forgotten)."""
    if reset:
        MailboxPoll.objects.update_or_create(
            tenant_id=tenant_id,
            mailbox_id=mailbox_id,
            defaults={"next_poll_at": timezone.now(), "failures": 0},
        )
    else:
        MailboxPoll.objects.get_or_create(tenant_id=tenant_id, mailbox_id=mailbox_id)


def unindex_mailbox(tenant_id: int, mailbox_id: int) -> int:
    """Take a mailbox out of the poll index; returns how many rows went (0 or 1)."""
    deleted, _ = MailboxPoll.objects.filter(tenant_id=tenant_id, mailbox_id=mailbox_id).delete()
    return deleted


def set_next_poll(tenant_id: int, mailbox_id: int, *, at: datetime, failures: int = 0) -> int:
    """The poller's next visit of an indexed mailbox and its count of failed logins."""
    return MailboxPoll.objects.filter(tenant_id=tenant_id, mailbox_id=mailbox_id).update(
        next_poll_at=at, failures=failures
    )


def poll_failures(tenant_id: int, mailbox_id: int) -> int:
    """Consecutive failed logins recorded for an indexed mailbox (0 when not indexed)."""
    row = MailboxPoll.objects.filter(tenant_id=tenant_id, mailbox_id=mailbox_id)
    return row.values_list("failures", flat=True).first() or 0


def due_mailboxes(moment: datetime, *, limit: int = 5000) -> list[tuple[int, int]]:
    """(tenant_id, mailbox_id) of the mailboxes due for a poll at `moment`, oldest due first."""
    rows = MailboxPoll.objects.filter(next_poll_at__lte=moment).order_by("next_poll_at", "id")
    return [(t, m) for t, m in rows.values_list("tenant_id", "mailbox_id")[:limit]]


# --- the warm-up pool (docs/warmup.md) ----------------------------------------------------------
def join_pool(
    tenant_id: int, mailbox_id: int, *, address: str, domain: str, ip: str | None, active: bool
) -> WarmupPoolMember:
    """Put a mailbox in the warm-up pool (or update its address, domain, IP and activity)."""
    member, _ = WarmupPoolMember.objects.update_or_create(
        tenant_id=tenant_id,
        mailbox_id=mailbox_id,
        defaults={
            "address": address.lower(),
            "domain": domain.lower(),
            "ip": ip or None,
            "active": active,
            "updated_at": timezone.now(),
        },
    )
    return member


def set_pool_active(tenant_id: int, mailbox_id: int, *, active: bool) -> int:
    """Mark a pool member active (paired and sent to) or not; returns the rows changed (0 or 1)."""
    return WarmupPoolMember.objects.filter(tenant_id=tenant_id, mailbox_id=mailbox_id).update(
        active=active, updated_at=timezone.now()
    )


def leave_pool(tenant_id: int, mailbox_id: int) -> int:
    """Take a mailbox out of the warm-up pool; returns how many rows went (0 or 1)."""
    deleted, _ = WarmupPoolMember.objects.filter(
        tenant_id=tenant_id, mailbox_id=mailbox_id
    ).delete()
    return deleted


def pool_member_id(tenant_id: int, mailbox_id: int) -> int | None:
    """The pool index id of a tenant's mailbox (what its tagged Message-IDs carry), or None."""
    row = WarmupPoolMember.objects.filter(tenant_id=tenant_id, mailbox_id=mailbox_id)
    return row.values_list("id", flat=True).first()


def active_pool() -> list[tuple[int, int, int, str, str, str | None]]:
    """(id, tenant_id, mailbox_id, address, domain, ip) of every active pool member, by id."""
    rows = WarmupPoolMember.objects.filter(active=True).order_by("id")
    return list(rows.values_list("id", "tenant_id", "mailbox_id", "address", "domain", "ip"))


def pool_addresses(member_ids: Collection[int], *, active_only: bool = False) -> dict[int, str]:
    """Member id -> address of these pool members (those still in the pool; only the active
    ones with `active_only`)."""
    rows = WarmupPoolMember.objects.filter(id__in=list(member_ids))
    if active_only:
        rows = rows.filter(active=True)
    return dict(rows.values_list("id", "address"))


def pool_tenants() -> list[int]:
    """Ids of the tenants with a mailbox in the warm-up pool, sorted."""
    rows = WarmupPoolMember.objects.order_by().values_list("tenant_id", flat=True).distinct()
    return sorted(rows)


__all__ = [
    "active_pool",
    "join_pool",
    "leave_pool",
    "pool_addresses",
    "pool_member_id",
    "pool_tenants",
    "set_pool_active",
    "due_mailboxes",
    "index_mailbox",
    "poll_failures",
    "set_next_poll",
    "unindex_mailbox",
    "due_running_tenants",
    "due_scheduled",
    "index_running",
    "index_scheduled",
    "running_campaigns",
    "set_next_run",
    "unindex_running",
    "unindex_scheduled",
]


# --- platform-wide daily counts (docs/inbound.md, "Automatic protection") -----------------------
def bump_platform_daily(
    day: date, *, sent: int = 0, bounced: int = 0, complained: int = 0, replied: int = 0
) -> None:
    """Add to the platform's counts of `day`: one upsert that adds (concurrent writers never lose
    a count), in the caller's transaction."""
    if not (sent or bounced or complained or replied):
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO platform_daily_stats AS s (day, sent, bounced, complained, replied) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (day) DO UPDATE SET "
            "sent = s.sent + EXCLUDED.sent, bounced = s.bounced + EXCLUDED.bounced, "
            "complained = s.complained + EXCLUDED.complained, "
            "replied = s.replied + EXCLUDED.replied",
            [day, sent, bounced, complained, replied],
        )


def platform_totals(since: date) -> tuple[int, int, int]:
    """The platform's (sent, bounced, complained) from `since` (a UTC day) to today."""
    totals = PlatformDailyStat.objects.filter(day__gte=since).aggregate(
        sent=Sum("sent"), bounced=Sum("bounced"), complained=Sum("complained")
    )
    return (totals["sent"] or 0, totals["bounced"] or 0, totals["complained"] or 0)
