"""A mailbox's passwords revealed for its SMTP/IMAP endpoints; one no configured key opens
marks the mailbox UNUSABLE and raises `SecretUnavailable`, naming the setting.
"""

from __future__ import annotations

from django.db import transaction

from deliverability.models import Mailbox, MailboxStatus
from deliverability.services.mailbox_probe import Endpoint
from deliverability.services.mailboxes.access import _tenant_here
from deliverability.services.mailboxes.lifecycle import transition_mailbox
from penguinmails.crypto import SecretUnavailable
from tenants.services.audit import record as audit


def mark_unusable(mailbox_id: int, *, reason: str) -> None:
    """The mailbox's password cannot be decrypted: stop using it, and say why (own transaction,
    so the mark survives the error the caller raises next)."""
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
        if mailbox is None or mailbox.status in (MailboxStatus.UNUSABLE, MailboxStatus.DISABLED):
            return
        transition_mailbox(mailbox, MailboxStatus.UNUSABLE, reason=reason)
        mailbox.last_error, mailbox.last_error_step = reason[:500], "secret"
        mailbox.save(update_fields=["last_error", "last_error_step"])
        audit("mailbox.unusable", tenant=_tenant_here(), address=mailbox.address, reason=reason)


def endpoints(mailbox: Mailbox) -> tuple[Endpoint, Endpoint | None]:
    """The mailbox's SMTP and IMAP endpoints with their passwords revealed. A password no key
    opens marks the mailbox UNUSABLE and raises SecretUnavailable (a clear message)."""
    try:
        smtp_password = mailbox.smtp_password.reveal()
        imap_password = mailbox.imap_password.reveal() if mailbox.imap_password else ""
    except SecretUnavailable as exc:
        message = (
            f"The password of {mailbox.address} cannot be decrypted: {exc.message} The mailbox "
            "is marked unusable; restore the key in FIELD_ENCRYPTION_KEYS, or delete and "
            "reconnect the mailbox."
        )
        mark_unusable(mailbox.pk, reason=message)
        mailbox.status = MailboxStatus.UNUSABLE
        raise SecretUnavailable(message) from None
    smtp = Endpoint(
        mailbox.smtp_host,
        mailbox.smtp_port,
        mailbox.smtp_security,
        mailbox.smtp_username,
        smtp_password,
    )
    imap = None
    if mailbox.imap_host and mailbox.imap_port:
        imap = Endpoint(
            mailbox.imap_host,
            mailbox.imap_port,
            mailbox.imap_security,
            mailbox.imap_username,
            imap_password,
        )
    return smtp, imap
