"""Mailboxes: create on our mail server, connect from outside, test, pause, resume, limit, delete
(docs/mailboxes.md).

Every function runs in the tenant's schema (dashboard and API on the tenant's host, job handlers
through the queue runner, commands inside `schema_context`) and refuses otherwise. Background
steps are jobs enqueued in the caller's transaction:

- `mailboxes.provision`: create the user on the tenant's Mailu server with the generated password
  (a SANDBOX server needs nothing), then activate the mailbox;
- `mailboxes.deprovision`: delete a removed hosted mailbox's user from its Mailu server.

Passwords are `Secret`s: revealed only to hand them to the SMTP/IMAP/Mailu server they belong
to, never logged, audited or returned. A password no configured key opens marks the mailbox
UNUSABLE and raises `SecretUnavailable`, naming the setting.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone

from billing.entitlements import Resource, lock_usage, require_capacity
from deliverability.models import (
    Mailbox,
    MailboxKind,
    MailboxStatus,
    Security,
    SendingDomain,
)
from deliverability.services.mailbox_probe import ConnectionReport, Endpoint, probe
from infrastructure.mailu import MailuError
from infrastructure.models import MailServer, MailServerKind
from infrastructure.services.mailservers import (
    mail_server_for,
    mailu_client_for,
    uses_shared_servers,
)
from penguinmails import states
from penguinmails.crypto import SecretUnavailable
from penguinmails.errors import DomainError, NotFound, ValidationFailed
from penguinmails.queue.producer import enqueue
from tenants.db import TenantConnection, require_schema
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

PROVISION_TASK = "mailboxes.provision"
DEPROVISION_TASK = "mailboxes.deprovision"
# Cold outreach from one mailbox stays healthy at a few dozen a day; providers' own ceilings
# (Google Workspace 2,000/day, Microsoft 365 10,000/day) are far above what is safe to use.
DEFAULT_DAILY_LIMIT = 50
MAX_DAILY_LIMIT = 500
# The workers' pool pauses a mailbox after this many sends in a row failed (smtp_pool.py).
PAUSE_AFTER_FAILURES = 3
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


class NoMailServer(DomainError):
    status_code = 409
    code = "no_mail_server"


class MailboxProvisionRetry(Exception):
    """A Mailu failure worth retrying (5xx, timeout): the provision job retries."""


# --- helpers -------------------------------------------------------------------------------------
def _in_schema(tenant: Tenant) -> None:
    require_schema(tenant, "mailbox services")


def _tenant_here() -> Tenant | None:
    """The tenant whose schema this connection is on (system callers: jobs, the pool, commands,
    where `connection.tenant` may be a stand-in rather than the Tenant row)."""
    return Tenant.objects.filter(schema_name=cast(TenantConnection, connection).schema_name).first()


def _actor(principal: Principal | None) -> User | None:
    return principal.user if principal is not None else None


def _email_of(actor: User | None) -> str:
    return actor.email if actor is not None else ""


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _address(raw: str, field: str = "address") -> str:
    address = (raw or "").strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise _fail(field, "Enter an email address such as jane@example.com.") from None
    return address


def _daily_limit(raw: int | str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_DAILY_LIMIT
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_DAILY_LIMIT:
        raise _fail("daily_limit", f"The daily limit is a number from 1 to {MAX_DAILY_LIMIT}.")
    return value


def _port(raw: int | str | None, field: str) -> int:
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 65535:
        raise _fail(field, "Enter a port number from 1 to 65535.")
    return value


def _security(raw: str, field: str) -> str:
    if raw not in Security.values:
        raise _fail(field, "Choose SSL/TLS, STARTTLS or none.")
    return raw


def _host(raw: str, field: str) -> str:
    host = (raw or "").strip().lower().rstrip(".")
    if not host or len(host) > 253 or any(c.isspace() for c in host):
        raise _fail(field, "Enter the server's host name, such as smtp.gmail.com.")
    return host


def _require_capacity(tenant: Tenant) -> None:
    """The plan's mailbox limit, counted under the tenant row's lock (two requests adding the
    last allowed mailbox at once cannot both pass). Call inside a transaction."""
    lock_usage(tenant)
    require_capacity(tenant, Resource.MAILBOXES, in_use=Mailbox.objects.count(), adding=1)


def transition_mailbox(
    mailbox: Mailbox, to: MailboxStatus, *, reason: str = "", actor: User | None = None
) -> Mailbox:
    """Move `mailbox` from the status it was read in to `to` (logged), with its reason.

    Of two concurrent movers only one wins; the loser gets IllegalTransition instead of
    overwriting a move it never saw.
    """
    fields: dict[str, Any] = {"status_reason": reason[:500]}
    if to == MailboxStatus.PAUSED:
        fields["paused_reason"] = reason[:500]
    elif to == MailboxStatus.ACTIVE:
        fields["paused_reason"] = ""
        fields["consecutive_failures"] = 0
    return states.transition(mailbox, to, reason=reason[:500], actor=actor, **fields)


def _locked(mailbox_id: int) -> Mailbox:
    found = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
    if found is None:
        raise NotFound("No such mailbox.")
    return found


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


# --- reads ---------------------------------------------------------------------------------------
def list_mailboxes(principal: Principal) -> QuerySet[Mailbox]:
    require(principal, Area.MAILBOXES, Level.READ)
    _in_schema(principal.tenant)
    return Mailbox.objects.all()


def access_mailbox(principal: Principal, mailbox_id: int | str) -> Mailbox:
    """One of the principal's tenant's mailboxes, or NotFound (another tenant's ids are unknown
    here: its rows live in another schema)."""
    require(principal, Area.MAILBOXES, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = Mailbox.objects.filter(pk=int(mailbox_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such mailbox.")
    return found


# --- connect (external) --------------------------------------------------------------------------
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
    return mailbox


def _refuse_duplicate(email: str) -> None:
    if Mailbox.objects.filter(address=email).exists():
        raise _fail("address", f"{email} is already one of your mailboxes.")


def _insert(mailbox: Mailbox) -> None:
    try:
        with transaction.atomic():
            mailbox.save(force_insert=True)
    except IntegrityError:  # a concurrent add of the same address won
        raise _fail("address", f"{mailbox.address} is already one of your mailboxes.") from None


# --- create (on our mail server) -----------------------------------------------------------------
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


# --- test, pause, resume, limit, delete ----------------------------------------------------------
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


def _copy(source: Mailbox, target: Mailbox) -> None:
    for field in (
        "status",
        "status_reason",
        "paused_reason",
        "consecutive_failures",
        "last_test_at",
        "last_test_ok",
        "last_error",
        "last_error_step",
        "daily_limit",
    ):
        setattr(target, field, getattr(source, field))


def pause_mailbox(principal: Principal | None, mailbox: Mailbox, *, reason: str) -> Mailbox:
    """Stop sending from the mailbox until resumed; the reason is shown and recorded.
    `principal` None is the system (the workers' pool)."""
    if principal is not None:
        require(principal, Area.MAILBOXES, Level.WRITE)
        _in_schema(principal.tenant)
    reason = (reason or "").strip() or "paused"
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        transition_mailbox(locked, MailboxStatus.PAUSED, reason=reason, actor=_actor(principal))
        audit(
            "mailbox.paused",
            tenant=_tenant_here(),
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
            reason=reason,
        )
    _copy(locked, mailbox)
    return mailbox


def resume_mailbox(principal: Principal, mailbox: Mailbox) -> Mailbox:
    """Send from a paused mailbox again (its failure count starts over)."""
    require(principal, Area.MAILBOXES, Level.WRITE)
    _in_schema(principal.tenant)
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        transition_mailbox(locked, MailboxStatus.ACTIVE, reason="resumed", actor=_actor(principal))
        audit(
            "mailbox.resumed",
            tenant=principal.tenant,
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
        )
    _copy(locked, mailbox)
    return mailbox


def set_daily_limit(principal: Principal, mailbox: Mailbox, *, daily_limit: int | str) -> Mailbox:
    require(principal, Area.MAILBOXES, Level.WRITE)
    _in_schema(principal.tenant)
    limit = _daily_limit(daily_limit)
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        before = locked.daily_limit
        locked.daily_limit = limit
        locked.save(update_fields=["daily_limit"])
        audit(
            "mailbox.limit_changed",
            tenant=principal.tenant,
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
            before=before,
            after=limit,
        )
    mailbox.daily_limit = limit
    return mailbox


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
        locked.delete()


# --- the workers' pool (deliverability.smtp_pool) ------------------------------------------------
def record_send_success(mailbox_id: int) -> None:
    """One UPDATE: the failure streak ends and today's count grows (a new day starts at 1)."""
    now = timezone.now()
    today = now.date()
    Mailbox.objects.filter(pk=mailbox_id).update(
        consecutive_failures=0,
        last_sent_at=now,
        sent_today=Case(When(sent_on=today, then=F("sent_today") + 1), default=Value(1)),
        sent_on=today,
    )


def record_sends(counts: Mapping[int, int], *, at: datetime) -> int:
    """`record_send_success` for many sends at once (the send pipeline's chunk): per mailbox id,
    `counts[id]` more sent today, the failure streak ended, `last_sent_at` = `at`. One
    `UPDATE ... FROM (VALUES ...)` per 1,000 mailboxes; returns the rows touched."""
    rows = [(mailbox_id, n) for mailbox_id, n in counts.items() if mailbox_id and n]
    day = at.astimezone(UTC).date()
    touched = 0
    for start in range(0, len(rows), 1000):
        part = rows[start : start + 1000]
        body = ", ".join(["(%s::bigint, %s::integer)"] + ["(%s, %s)"] * (len(part) - 1))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE deliverability_mailbox AS t
                SET consecutive_failures = 0, last_sent_at = %s, sent_on = %s,
                    sent_today = CASE WHEN t.sent_on = %s THEN t.sent_today + v.n ELSE v.n END
                FROM (VALUES {body}) AS v(id, n)
                WHERE t.id = v.id
                """,  # noqa: S608 - the VALUES list is placeholders only
                [at, day, day, *(value for row in part for value in row)],
            )
            touched += cursor.rowcount
    return touched


def record_send_failure(
    mailbox_id: int, *, step: str, error: str, pause_after: int = PAUSE_AFTER_FAILURES
) -> bool:
    """Count a failed send; after `pause_after` in a row the mailbox is paused with the reason
    recorded. True when this failure paused it."""
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
        if mailbox is None:
            return False
        mailbox.consecutive_failures += 1
        mailbox.last_error, mailbox.last_error_step = error[:500], step[:16]
        mailbox.save(update_fields=["consecutive_failures", "last_error", "last_error_step"])
        if mailbox.consecutive_failures < pause_after or mailbox.status not in (
            MailboxStatus.ACTIVE,
            MailboxStatus.FAILING,
        ):
            return False
        reason = f"{mailbox.consecutive_failures} sends in a row failed; last: {step}: {error}"
        pause_mailbox(None, mailbox, reason=reason)
    return True


def sent_today(mailbox: Mailbox) -> int:
    return mailbox.sent_today if mailbox.sent_on == timezone.now().date() else 0
