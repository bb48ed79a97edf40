"""All periodic work, in one place. Each entry expires, so ticks missed while workers were busy
or down are dropped instead of piling up. Maintenance goes to the high queue: it must not wait
behind the backlog it manages."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from penguinmails.env import env_int
from penguinmails.queue.queues import Queue

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "migrate-ready-jobs": {
        "task": "penguinmails.migrate_jobs",
        "schedule": 1.0,
        "options": {"queue": Queue.HIGH.value, "expires": 5},
    },
    # /health/queue fails when this heartbeat is stale (penguinmails.heartbeat).
    "beat-heartbeat": {
        "task": "penguinmails.beat_heartbeat",
        "schedule": 10.0,
        "options": {"queue": Queue.HIGH.value, "expires": 10},
    },
    "reap-expired-jobs": {
        "task": "penguinmails.reap_jobs",
        "schedule": 5.0,
        "options": {"queue": Queue.HIGH.value, "expires": 10},
    },
    # Alerts (docs/operations.md, "Alerts"): every registered rule, once a minute.
    "alerts-evaluate": {
        "task": "penguinmails.enqueue_job",
        "schedule": 60.0,
        "args": ("alerts.evaluate",),
        "options": {"queue": Queue.HIGH.value, "expires": 55},
    },
    "prune-completed-jobs": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=17, hour=3),
        "args": ("platform.prune_jobs",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    "discover-awaiting-ips": {
        "task": "penguinmails.enqueue_job",
        "schedule": 900.0,
        "args": ("infra.discover_awaiting_ips",),
        "options": {"queue": Queue.HIGH.value, "expires": 600},
    },
    # Servers' CPU, memory and disk against their plan's thresholds (docs/infrastructure.md,
    # "Resources"): one read per active server, spread over the interval. Read from the
    # environment here: beat loads this module before Django's settings.
    "vps-resources-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": float(env_int("VPS_RESOURCES_INTERVAL_SECONDS", default=300)),
        "args": ("infra.resources_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 120},
    },
    # Backups (docs/operations.md, "Backups and migrations"): the whole database daily at
    # BACKUP_HOUR (UTC) with retention, and a verifying restore on the 1st of each month.
    "backups-daily": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=0, hour=env_int("BACKUP_HOUR", default=3)),
        "args": ("backups.daily",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    "backups-verify-monthly": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(
            minute=0, hour=(env_int("BACKUP_HOUR", default=3) + 2) % 24, day_of_month=1
        ),
        "args": ("backups.verify",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    # Campaign sending (docs/sending.md): visit tenants with running campaigns (the public index).
    "campaigns-tick": {
        "task": "penguinmails.enqueue_job",
        "schedule": 10.0,
        "args": ("campaigns.tick",),
        "options": {"queue": Queue.HIGH.value, "expires": 10},
    },
    # Status counters (docs/analytics.md, "Status counters"): fold the triggers' delta rows, once a
    # minute, in each tenant with a running campaign (the public index).
    "campaigns-counts-compact": {
        "task": "penguinmails.enqueue_job",
        "schedule": 60.0,
        "args": ("campaigns.counts_compact_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 60},
    },
    # A scheduled campaign starts at its start time (docs/states.md; the public index).
    "campaigns-start-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": 15.0,
        "args": ("campaigns.start_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 15},
    },
    # Warm-up receiving side (docs/warmup.md): delete warm-up mail older than
    # WARMUP_CLEANUP_DAYS from the pool's mailboxes, once a day.
    "warmup-cleanup-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=35, hour=4),
        "args": ("warmup.cleanup_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    # Tracking (docs/tracking.md): buffered opens, clicks and unsubscribes into PostgreSQL.
    "tracking-flush": {
        "task": "penguinmails.enqueue_job",
        "schedule": 2.0,
        "args": ("tracking.flush",),
        "options": {"queue": Queue.HIGH.value, "expires": 5},
    },
    # Inbound mail (docs/inbound.md): poll the mailboxes due in the public index.
    "inbound-poll-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": 30.0,
        "args": ("inbound.poll_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 30},
    },
    # Billing (docs/billing.md): compare subscriptions with Stripe nightly, fix drift.
    "billing-reconcile": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=40, hour=2),
        "args": ("billing.reconcile",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    # Dunning (docs/billing.md): move overdue tenants along the ladder (reminders, pause,
    # suspension) and retry restores that failed.
    "billing-dunning": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=10, hour=6),
        "args": ("billing.dunning_advance",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    # Margins (docs/billing.md): alert staff about tenants costing more than they pay, or under
    # BILLING_MARGIN_FLOOR, on the last complete month.
    "billing-margins": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=20, hour=6),
        "args": ("billing.margins_check",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    # Warm-up (docs/warmup.md): pair the pool for tomorrow at noon UTC (every timezone's
    # working day of tomorrow is still ahead), and send the due warm-up messages.
    "warmup-plan-day": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=5, hour=12),
        "args": ("warmup.plan_day",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
    "warmup-send-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": 60.0,
        "args": ("warmup.send_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 60},
    },
    # Automatic protection's safety net and the platform bounce alert (docs/inbound.md).
    "protection-check": {
        "task": "penguinmails.enqueue_job",
        "schedule": 600.0,
        "args": ("protection.check_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 600},
    },
    # DNS blocklists (docs/reputation.md): IPs due (jittered per IP over the day), and one
    # deduplicated job per active tenant that checks its verified domains that are due.
    "blocklists-ips-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": 600.0,
        "args": ("reputation.blocklists_ips_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 600},
    },
    "blocklists-domains-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": 3600.0,
        "args": ("reputation.blocklists_domains_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 1800},
    },
    # Reputation scores (docs/reputation.md): each active tenant's mailboxes, domains and IPs,
    # once a day near its end, so the day's row holds the whole day's placements.
    "reputation-scores-due": {
        "task": "penguinmails.enqueue_job",
        "schedule": crontab(minute=40, hour=23),
        "args": ("reputation.scores_due",),
        "options": {"queue": Queue.HIGH.value, "expires": 3600},
    },
}
