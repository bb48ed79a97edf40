"""The mail servers /health/email probes (registered with penguinmails.health at start-up)."""

from __future__ import annotations

from infrastructure.models import MailServer, MailServerStatus


def active_mail_servers() -> list[tuple[str, str, int]]:
    """(hostname, SMTP host, SMTP port) of every active mail server, Mailu or sandbox."""
    rows = MailServer.objects.filter(status=MailServerStatus.ACTIVE).order_by("id")
    return list(rows.values_list("hostname", "smtp_host", "smtp_port"))
