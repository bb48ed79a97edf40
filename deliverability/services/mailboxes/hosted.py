"""Mailboxes on our mail server: `create_mailbox`, the provision and deprovision job steps on
the tenant's Mailu server, and `delete_mailbox` (which deprovisions a hosted one).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction

from deliverability.models import Mailbox, MailboxKind, MailboxStatus, Security, SendingDomain
from deliverability.services.mailboxes.access import (
    _actor,
    _email_of,
    _in_schema,
    _locked,
    _tenant_here,
)
from deliverability.services.mailboxes.credentials import endpoints
from deliverability.services.mailboxes.lifecycle import sync_poll_index, transition_mailbox
from deliverability.services.mailboxes.validation import (
    _address,
    _daily_limit,
    _fail,
    _insert,
    _refuse_duplicate,
    _require_capacity,
)
from deliverability.signals import mailbox_moved
from infrastructure.mailu import MailuError
from infrastructure.models import MailServer, MailServerKind
from infrastructure.services.mailservers import (
    mail_server_for,
    mailu_client_for,
    uses_shared_servers,
)
from penguinmails import indexes, states
from penguinmails.analytics_events import capture
from penguinmails.crypto import SecretUnavailable
from penguinmails.errors import DomainError
from penguinmails.queue.producer import enqueue
from tenants.models import Tenant
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

PROVISION_TASK = "mailboxes.provision"
DEPROVISION_TASK = "mailboxes.deprovision"


class NoMailServer(DomainError):
    status_code = 409
    code = "no_mail_server"


class MailboxProvisionRetry(Exception):
    """A Mailu failure worth retrying (5xx, timeout): the provision job retries."""


def _active_server(tenant: Tenant) -> MailServer:
    """The public MailServer the tenant's mailboxes go on (its own, or the shared one when its
    plan has no dedicated servers), or NoMailServer."""
    server = mail_server_for(tenant)
    if server is None and uses_shared_servers(tenant):
        raise NoMailServer(
            "The shared mail servers are not available right now: connect a mailbox you already "
            "have, or contact support."
        )
    if server is None:
        raise NoMailServer(
            "This workspace has no active mail server yet: provision one on the Infrastructure "
            "page, or connect a mailbox you already have."
        )
    return server


def _server_by_id(server_id: int | None) -> MailServer | None:
    if server_id is None:
        return None
    return MailServer.objects.filter(pk=server_id).first()


def _is_sandbox(server: MailServer) -> bool:
    return server.kind == MailServerKind.SANDBOX


def _security_for(port: int, *, sandbox: bool) -> str:
    # Implicit TLS on the well-known ports (465 SMTP, 993 IMAP); STARTTLS otherwise. The sandbox
    # listens on loopback without TLS.
    if sandbox:
        return Security.NONE
    return Security.SSL if port in (465, 993) else Security.STARTTLS


def create_mailbox(
    principal: Principal,
    *,
    local_part: str,
    domain: str,
    display_name: str = "",
    daily_limit: int | str | None = None,
) -> Mailbox:
    """Create a mailbox on the tenant's active mail server with a generated strong password
    (stored encrypted); a provision job sets it up on the server and activates it."""
    require(principal, Area.MAILBOXES, Level.WRITE)
    tenant = principal.tenant
    _in_schema(tenant)
    with transaction.atomic():
        # At the plan's limit nothing else matters: say so first (checked again below, locked).
        _require_capacity(tenant)
    domain_name = (domain or "").strip().lower().rstrip(".")
    if not SendingDomain.objects.filter(name=domain_name).exists():
        raise _fail("domain", "Choose one of your sending domains (add it on the Domains page).")
    email = _address(f"{(local_part or '').strip()}@{domain_name}", "local_part")
    limit = _daily_limit(daily_limit)
    server = _active_server(tenant)
    sandbox = _is_sandbox(server)
    if sandbox:
        # The sandbox SMTP server accepts one login (settings.SANDBOX_SMTP_USER/PASSWORD).
        username, password = settings.SANDBOX_SMTP_USER, settings.SANDBOX_SMTP_PASSWORD
    else:
        username, password = email, secrets.token_urlsafe(24)
    smtp_port = server.smtp_port
    # The sandbox serves SMTP only; a Mailu server without an IMAP host has no IMAP for us.
    imap_port = server.imap_port if server.imap_host and not sandbox else None
    with transaction.atomic():
        _require_capacity(tenant)
        _refuse_duplicate(email)
        mailbox = Mailbox(
            address=email,
            display_name=display_name.strip()[:120],
            kind=MailboxKind.HOSTED,
            mail_server_id=server.pk,
            smtp_host=server.smtp_host,
            smtp_port=smtp_port,
            smtp_security=_security_for(smtp_port, sandbox=sandbox),
            smtp_username=username,
            smtp_password=password,
            imap_host=server.imap_host if imap_port else "",
            imap_port=imap_port,
            imap_security=_security_for(imap_port, sandbox=False) if imap_port else "",
            imap_username=username if imap_port else "",
            imap_password=password if imap_port else None,
            daily_limit=limit,
            created_by_email=_email_of(_actor(principal)),
        )
        _insert(mailbox)
        states.note(mailbox, reason=f"created on {server.hostname}", actor=_actor(principal))
        audit(
            "mailbox.created",
            tenant=tenant,
            actor=_actor(principal),
            address=email,
            mailbox_id=mailbox.pk,
            mail_server_id=server.pk,
        )
        capture("mailbox connected", tenant, {"kind": str(mailbox.kind), "hosted": True})
        enqueue(
            PROVISION_TASK,
            {"mailbox_id": mailbox.pk},
            tenant=tenant,
            priority=40,
            idempotency_key=f"{PROVISION_TASK}:{tenant.pk}:{mailbox.pk}",
        )
    return mailbox


def provision_mailbox(mailbox_id: int, *, tenant: Tenant) -> Mailbox | None:
    """Job step: create (or converge) the user on the Mailu server, then activate. A permanent
    Mailu refusal (bad token, 401/403, a limit) marks the mailbox failing with the reason; it is
    not retried (Mailu counts bad tokens toward its lock-out)."""
    _in_schema(tenant)
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if mailbox is None or mailbox.status != MailboxStatus.PENDING:
        return mailbox  # deleted, or a re-run after it settled
    server = _server_by_id(mailbox.mail_server_id)
    if server is None:
        return _settle_provision(mailbox_id, MailboxStatus.FAILING, "its mail server is gone")
    if not _is_sandbox(server):
        endpoints(mailbox)  # a password no key opens: marked unusable, clear error
        password = mailbox.smtp_password.reveal()
        try:
            with mailu_client_for(server) as client:
                # Mailu refuses users of a domain it does not host; creating it is idempotent.
                client.create_domain(mailbox.address.rpartition("@")[2])
                client.create_user(
                    mailbox.address,
                    password,
                    displayed_name=mailbox.display_name or None,
                    comment=f"penguinmails tenant {tenant.slug}",
                )
        except MailuError as exc:
            if not exc.permanent:
                raise MailboxProvisionRetry(exc.message) from None
            return _settle_provision(mailbox_id, MailboxStatus.FAILING, exc.message)
        except SecretUnavailable as exc:  # the server's API token, not the mailbox's password
            return _settle_provision(mailbox_id, MailboxStatus.FAILING, exc.message)
    return _settle_provision(mailbox_id, MailboxStatus.ACTIVE, f"set up on {server.hostname}")


def _settle_provision(mailbox_id: int, to: MailboxStatus, reason: str) -> Mailbox | None:
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
        if mailbox is None or mailbox.status != MailboxStatus.PENDING:
            return mailbox
        transition_mailbox(mailbox, to, reason=reason)
        if to == MailboxStatus.FAILING:
            mailbox.last_error, mailbox.last_error_step = reason[:500], "provision"
            mailbox.save(update_fields=["last_error", "last_error_step"])
        audit(
            "mailbox.provisioned" if to == MailboxStatus.ACTIVE else "mailbox.provision_failed",
            tenant=_tenant_here(),
            address=mailbox.address,
            mailbox_id=mailbox.pk,
            reason=reason,
        )
    return mailbox


def deprovision_mailbox(address: str, *, mail_server_id: int) -> None:
    """Job step: remove a deleted hosted mailbox's user from its Mailu server (gone is fine)."""
    server = _server_by_id(mail_server_id)
    if server is None or _is_sandbox(server):
        return
    try:
        with mailu_client_for(server) as client:
            client.delete_user(address, missing_ok=True)
    except MailuError as exc:
        if not exc.permanent:
            raise MailboxProvisionRetry(exc.message) from None
        raise


def delete_mailbox(principal: Principal, mailbox: Mailbox) -> None:
    """Delete the mailbox; a hosted one is also removed from its Mailu server (a job)."""
    require(principal, Area.MAILBOXES, Level.WRITE)
    tenant = principal.tenant
    _in_schema(tenant)
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        if locked.kind == MailboxKind.HOSTED and locked.mail_server_id is not None:
            enqueue(
                DEPROVISION_TASK,
                {"address": locked.address, "mail_server_id": locked.mail_server_id},
                tenant=tenant,
            )
        audit(
            "mailbox.deleted",
            tenant=tenant,
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
        )
        indexes.unindex_mailbox(tenant.pk, locked.pk)
        mailbox_moved.send(sender=Mailbox, tenant=tenant, mailbox=locked, deleted=True)
        locked.delete()


def attach_sandbox_imap(mailbox: Mailbox, *, host: str, port: int, password: str) -> Mailbox:
    """Give a mailbox on the sandbox mail server its login on the sandbox Dovecot (the demo
    workspace, docs/sandbox.md), so the inbound poller reads what comes back to it. The login
    is the address; loopback, no TLS. Refused for any other mailbox."""
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        server = _server_by_id(locked.mail_server_id)
        if server is None or not _is_sandbox(server):
            raise DomainError("only a mailbox on the sandbox mail server has a sandbox IMAP login")
        locked.imap_host, locked.imap_port = host, port
        locked.imap_security = Security.NONE
        locked.imap_username = locked.address
        locked.imap_password = password
        locked.save(
            update_fields=[
                "imap_host", "imap_port", "imap_security", "imap_username", "imap_password",
            ]
        )  # fmt: skip
        sync_poll_index(locked)
    return locked
