"""The one place the stripe package is configured (docs/billing.md, "Stripe").

The official `stripe` package brings its own HTTP stack: form encoding, the `Stripe-Version`
header, an idempotency key on every POST and retries that are safe because of it. Rather than
re-implementing that on penguinmails/http.py we give the package an httpx transport (the HTTP
library of penguinmails/http.py) with our timeout, and let it retry on its own (2 tries after the
first). Nothing here logs a key or a body; the package logs only when STRIPE_LOG is set, which we
never set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from django.conf import settings

from penguinmails.errors import Conflict, DomainError

# Errors that a later try may not meet (the job queue retries them): network, 429, Stripe's 5xx.
TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


class StripeNotConfigured(Conflict):
    """STRIPE_SECRET_KEY is empty: plans change without payment (staff or self-serve)."""

    code = "stripe_not_configured"


class PaymentProviderError(DomainError):
    """Stripe refused or could not be reached while the user waited (a page or API call)."""

    status_code = 502
    code = "payment_provider_error"


@contextmanager
def user_facing() -> Iterator[None]:
    """Turn Stripe's errors into a DomainError the dashboard and API render (never a 500)."""
    try:
        yield
    except stripe.StripeError as exc:
        message = exc.user_message or "Stripe could not be reached; try again in a minute."
        raise PaymentProviderError(f"Payment provider error: {message}") from exc


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    """A client for STRIPE_SECRET_KEY at STRIPE_API_BASE (the local Stripe in dev and tests)."""
    if not configured():
        raise StripeNotConfigured("Stripe is not configured (STRIPE_SECRET_KEY is empty).")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,
        http_client=stripe.HTTPXClient(
            timeout=settings.STRIPE_TIMEOUT_SECONDS, allow_sync_methods=True
        ),
    )
