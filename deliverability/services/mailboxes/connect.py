"""Mailboxes hosted elsewhere (Google, Microsoft, others) connected after a live test, and the
live connection test of any mailbox (`test_mailbox`).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from deliverability.models import Mailbox, MailboxKind, MailboxStatus
from deliverability.services.mailbox_probe import ConnectionReport, Endpoint, probe
from deliverability.services.mailboxes.access import (
    _actor,
    _email_of,
    _in_schema,
    _locked,
    _tenant_here,
)
from deliverability.services.mailboxes.credentials import endpoints
from deliverability.services.mailboxes.lifecycle import _copy, transition_mailbox
from deliverability.services.mailboxes.validation import (
    _address,
    _daily_limit,
    _fail,
    _host,
    _insert,
    _port,
    _refuse_duplicate,
    _require_capacity,
    _security,
)
from penguinmails.analytics_events import capture
from penguinmails.errors import DomainError
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

EXTERNAL_KINDS = frozenset({MailboxKind.GOOGLE, MailboxKind.MICROSOFT, MailboxKind.OTHER})


class ConnectionFailed(DomainError):
    """The live connection test of a mailbox being connected failed; nothing was saved."""

    status_code = 400
    code = "connection_failed"

    def __init__(self, report: ConnectionReport) -> None:
        fields = {
            r.protocol: [f"{r.step}: {r.message}"]
            for r in (report.smtp, report.imap)
            if r is not None and not r.ok
        }
        super().__init__(report.summary(), fields=fields)
        self.report = report


def connect_mailbox(
    principal: Principal,
    *,
    address: str,
    kind: str = MailboxKind.OTHER,
    display_name: str = "",
    smtp_host: str,
    smtp_port: int | str,
    smtp_security: str,
    smtp_username: str = "",
    smtp_password: str,
    imap_host: str,
    imap_port: int | str,
    imap_security: str,
    imap_username: str = "",
    imap_password: str = "",
    daily_limit: int | str | None = None,
    timeout: float = 10.0,
) -> Mailbox:
    """Connect a mailbox hosted elsewhere after a live SMTP and IMAP test; nothing is saved
    unless both pass (ConnectionFailed says which step failed)."""
    require(principal, Area.MAILBOXES, Level.WRITE)
    tenant = principal.tenant
    _in_schema(tenant)
    email = _address(address)
    if kind not in EXTERNAL_KINDS:
        raise _fail("kind", "Choose Google Workspace, Microsoft 365 or another provider.")
    if not smtp_password:
        raise _fail("smtp_password", "Enter the SMTP password (an app password for Google/M365).")
    smtp = Endpoint(
        _host(smtp_host, "smtp_host"),
        _port(smtp_port, "smtp_port"),
        _security(smtp_security, "smtp_security"),
        (smtp_username or email).strip(),
        smtp_password,
    )
    imap = Endpoint(
        _host(imap_host, "imap_host"),
        _port(imap_port, "imap_port"),
        _security(imap_security, "imap_security"),
        (imap_username or smtp.username).strip(),
        imap_password or smtp_password,  # providers use one app password for both
    )
    limit = _daily_limit(daily_limit)
    # Refuse what the plan or uniqueness refuses before spending seconds on the network.
    with transaction.atomic():
        _require_capacity(tenant)
        _refuse_duplicate(email)
    # The network test runs outside any transaction: no row lock held for seconds.
    report = probe(smtp, imap, timeout=timeout)
    if not report.ok:
        audit(
            "mailbox.connect_failed",
            tenant=tenant,
            actor=_actor(principal),
            address=email,
            summary=report.summary(),
        )
        raise ConnectionFailed(report)
    with transaction.atomic():
        _require_capacity(tenant)
        _refuse_duplicate(email)
        mailbox = Mailbox(
            address=email,
            display_name=display_name.strip()[:120],
            kind=kind,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security=smtp.security,
            smtp_username=smtp.username,
            smtp_password=smtp.password,
            imap_host=imap.host,
            imap_port=imap.port,
            imap_security=imap.security,
            imap_username=imap.username,
            imap_password=imap.password,
            daily_limit=limit,
            last_test_at=timezone.now(),
            last_test_ok=True,
            created_by_email=_email_of(_actor(principal)),
        )
        _insert(mailbox)
        transition_mailbox(
            mailbox, MailboxStatus.ACTIVE, reason="connection test passed", actor=_actor(principal)
        )
        audit(
            "mailbox.connected",
            tenant=tenant,
            actor=_actor(principal),
            address=email,
            mailbox_id=mailbox.pk,
            kind=kind,
        )
        capture("mailbox connected", tenant, {"kind": kind, "hosted": False})
    return mailbox


def test_mailbox(
    principal: Principal | None, mailbox: Mailbox, *, timeout: float = 10.0
) -> ConnectionReport:
    """Run the live connection test now and record it in the health record. A failing test
    moves an active mailbox to failing; a passing one brings a failing or unusable one back.
    A password no key opens raises SecretUnavailable (and marks the mailbox unusable)."""
    if principal is not None:
        require(principal, Area.MAILBOXES, Level.WRITE)
        _in_schema(principal.tenant)
    smtp, imap = endpoints(mailbox)
    report = probe(smtp, imap, timeout=timeout)
    actor = _actor(principal)
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        locked.last_test_at = timezone.now()
        locked.last_test_ok = report.ok
        failed = report.failure
        if failed is not None:
            locked.last_error = f"{failed.protocol.upper()}: {failed.message}"[:500]
            locked.last_error_step = str(failed.step)
            if locked.status in (MailboxStatus.ACTIVE, MailboxStatus.PENDING):
                transition_mailbox(
                    locked, MailboxStatus.FAILING, reason=report.summary(), actor=actor
                )
        else:
            locked.last_error, locked.last_error_step = "", ""
            locked.consecutive_failures = 0
            if locked.status in (MailboxStatus.FAILING, MailboxStatus.UNUSABLE):
                transition_mailbox(
                    locked, MailboxStatus.ACTIVE, reason="connection test passed", actor=actor
                )
        locked.save(
            update_fields=[
                "last_test_at",
                "last_test_ok",
                "last_error",
                "last_error_step",
                "consecutive_failures",
            ]
        )
        audit(
            "mailbox.tested",
            tenant=_tenant_here(),
            actor=actor,
            address=locked.address,
            mailbox_id=locked.pk,
            ok=report.ok,
            summary=report.summary(),
        )
    _copy(locked, mailbox)
    return report
