"""Where an opened alert is told: staff by email, a Slack-compatible webhook (ALERTS_WEBHOOK_URL,
POST {"text": ...} through the durable queue and netguard), and the banners (admin, tenant
dashboard), which read open alerts when drawn and need nothing sent."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model

from penguinmails import netguard
from penguinmails.http import HttpClient, RetryPolicy, TransportFailure, pinned_transport
from penguinmails.mail import send_transactional
from penguinmails.queue.producer import enqueue

if TYPE_CHECKING:
    from penguinmails.alerts.models import Alert

log = logging.getLogger(__name__)

WEBHOOK_JOB = "alerts.webhook"


def staff_emails() -> list[str]:
    """Active staff users' addresses, plus ADMINS when configured."""
    users = get_user_model().objects.filter(is_staff=True, is_active=True)
    found = [str(email) for email in users.values_list("email", flat=True) if email]
    found += [email for _, email in getattr(settings, "ADMINS", [])]
    return sorted(set(found))


def text_of(alert: Alert) -> str:
    where = f" [{alert.tenant_schema}]" if alert.tenant_schema else ""
    return f"[{alert.severity.upper()}] {alert.rule} {alert.subject}{where}: {alert.summary}"


def announce(alert: Alert, *, email_staff: bool = True) -> None:
    """In the opening transaction: emails go out after commit, the webhook job commits with it."""
    variables = {
        "headline": f"PenguinMails alert: {alert.rule}",
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": str(alert.severity),
        "summary": alert.summary,
        "tenant_name": alert.tenant_schema or "(platform)",
    }
    for to in staff_emails() if email_staff else []:
        send_transactional(
            "alert", to=to, variables=variables, idempotency_key=f"alert-{alert.pk}-{to}"
        )
    if getattr(settings, "ALERTS_WEBHOOK_URL", ""):
        # The text as at opening: a refresh before the job runs does not change what is told.
        payload = {"alert_id": alert.pk, "text": text_of(alert)}
        enqueue(WEBHOOK_JOB, payload, idempotency_key=f"alert-webhook-{alert.pk}")


class WebhookFailed(Exception):
    """The webhook answered with an error or not at all (retried by the queue)."""


def post_webhook(text: str, *, url: str | None = None) -> int:
    """POST {"text": text} to the webhook, vetted by netguard (again at each send: DNS
    rebinding). Returns the status; raises WebhookFailed on a 5xx/429 or no answer, and
    netguard.Refused for an address that is not allowed."""
    url = url if url is not None else settings.ALERTS_WEBHOOK_URL
    target = netguard.check_url(url, schemes=("https", "http"))
    with HttpClient(
        "alerts-webhook",
        timeout=5,
        retry=RetryPolicy(attempts=1),
        transport=pinned_transport(target),
    ) as http:
        try:
            response = http.request("POST", url, json={"text": text})
        except TransportFailure as exc:
            raise WebhookFailed(f"alert webhook: no answer ({exc})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise WebhookFailed(f"alert webhook answered {response.status_code}")
    if response.status_code >= 400:
        log.warning("alert webhook refused the message: HTTP %s", response.status_code)
    return response.status_code
