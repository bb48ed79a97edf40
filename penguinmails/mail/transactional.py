from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from penguinmails.mail.loops import LoopsClient

logger = logging.getLogger(__name__)

# Each kind and the variables its template needs.
KINDS: dict[str, frozenset[str]] = {
    "verify_email": frozenset({"verify_url", "name"}),
    "password_reset": frozenset({"reset_url", "name"}),
    "invitation": frozenset({"invite_url", "tenant_name", "inviter_name", "role_name"}),
    # Automatic protection and the platform bounce alert (docs/inbound.md).
    "protection": frozenset({"headline", "tenant_name", "what", "label", "reason", "advice"}),
    # Dunning after a failed payment (docs/billing.md, "Dunning").
    "billing_dunning": frozenset({"headline", "tenant_name", "body", "action_url"}),
    # The alert engine's staff email on open (docs/operations.md, "Alerts").
    "alert": frozenset({"headline", "rule", "subject", "severity", "summary", "tenant_name"}),
}


def _check(kind: str, variables: Mapping[str, str]) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown transactional email kind {kind!r}")
    missing = KINDS[kind] - set(variables)
    if missing:
        raise ValueError(f"{kind}: missing variables {', '.join(sorted(missing))}")


def send_transactional_now(
    kind: str, *, to: str, variables: Mapping[str, str], idempotency_key: str
) -> None:
    """Send at once through the configured provider."""
    _check(kind, variables)
    if settings.LOOP_API_KEY:
        LoopsClient.from_settings().send(
            kind, to=to, variables=dict(variables), idempotency_key=idempotency_key
        )
        return
    context = dict(variables)
    subject = render_to_string(f"emails/{kind}.subject.txt", context).strip()
    text = render_to_string(f"emails/{kind}.txt", context)
    html = render_to_string(f"emails/{kind}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()


def send_transactional(
    kind: str, *, to: str, variables: Mapping[str, str], idempotency_key: str
) -> None:
    """Send after the current transaction commits (at once outside a transaction)."""
    _check(kind, variables)
    frozen = dict(variables)

    def _send() -> None:
        try:
            send_transactional_now(kind, to=to, variables=frozen, idempotency_key=idempotency_key)
        except Exception:
            # The address is personal data and the variables hold tokens: log neither.
            logger.exception("transactional email %s failed (key %s)", kind, idempotency_key)

    transaction.on_commit(_send)
