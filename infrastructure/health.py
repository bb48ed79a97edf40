"""The mail servers /health/email probes (registered with penguinmails.health at start-up)."""

from __future__ import annotations

from infrastructure.models import MailServer, MailServerStatus


def active_mail_servers() -> list[tuple[str, str, int]]:
    """(label, SMTP host, SMTP port) of every active mail server, Mailu or sandbox. The label is
    the server's id: /health/email answers anonymous callers on every host, so it names no
    hostname (a tenant's private server among them); staff find the id in the admin."""
    rows = MailServer.objects.filter(status=MailServerStatus.ACTIVE).order_by("id")
    return [
        (str(pk), host, port) for pk, host, port in rows.values_list("id", "smtp_host", "smtp_port")
    ]
