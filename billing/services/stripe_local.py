"""`make run`'s local Stripe starts empty every time (its store lives in memory): once it
listens, the plans are synced to it again and what the database still refers to from an
earlier run is dropped: customers it does not know (a new one is made on the next checkout) and
subscriptions it no longer has (canceled by the reconciliation). Only ever against a loopback
STRIPE_API_BASE: never against Stripe itself (docs/billing.md, "Walk-through")."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import stripe
from django.conf import settings

from billing.models import StripeCustomer
from billing.services.stripe_billing import sync_plans
from billing.services.stripe_client import client
from billing.services.stripe_events import reconcile

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def prepare_local_stripe(url: str) -> None:
    base = urlsplit(settings.STRIPE_API_BASE or "")
    if base.hostname not in LOOPBACK or not settings.STRIPE_SECRET_KEY:
        return  # a real Stripe (or none): nothing to prepare
    report = sync_plans()
    forgotten = 0
    for row in StripeCustomer.objects.all():
        try:
            client().v1.customers.retrieve(row.customer_id)
        except stripe.InvalidRequestError:
            row.delete()
            forgotten += 1
    fixes = reconcile()
    log.warning(
        "local Stripe at %s: %d plan object(s) created, %d stale customer(s) forgotten, "
        "%d subscription(s) reconciled",
        url,
        len(report.created),
        forgotten,
        len(fixes),
    )
