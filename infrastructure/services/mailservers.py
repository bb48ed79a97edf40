"""Mail servers: which one a tenant's mailboxes go on, and a Mailu client for it.

A tenant whose plan includes dedicated servers uses its own (provisioned on the Infrastructure
page). A plan without any (Starter: `vps_count` 0) sends from the platform's shared mail server:
a MailServer row flagged `shared` with no tenant. With the local VPS provider (dev, demo, tests)
the shared server is created on first use and points at the sandbox SMTP server, as the
dedicated ones do there; in production staff register it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.entitlements import limits_for
from infrastructure.mailu import MailuClient
from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from penguinmails.errors import ValidationFailed
from tenants.models import Tenant

SHARED_SANDBOX_HOSTNAME = "shared.sandbox.localhost"


def active_mail_server(tenant: Tenant) -> MailServer | None:
    """The tenant's own active mail server (the oldest, when it has several), or None."""
    return (
        MailServer.objects.filter(tenant=tenant, status=MailServerStatus.ACTIVE)
        .order_by("created_at", "id")
        .first()
    )


def uses_shared_servers(tenant: Tenant) -> bool:
    """True when the tenant's plan includes no dedicated server: it sends from shared ones."""
    return limits_for(tenant).vps_count <= 0


def _local_stand_ins() -> bool:
    # The rule of get_vps_provider() (without building a provider): with the local provider the
    # dedicated servers' mail servers are the sandbox too (provisioning._mail_server_for).
    choice = settings.VPS_PROVIDER or ("hostwinds" if settings.HOSTWIND_API_KEY else "local")
    return choice == "local"


def shared_mail_server() -> MailServer | None:
    """The platform's active shared mail server; created on first use with the local provider
    (the sandbox SMTP server stands in), None in production until staff register one."""
    found = (
        MailServer.objects.filter(shared=True, status=MailServerStatus.ACTIVE)
        .order_by("created_at", "id")
        .first()
    )
    if found is not None or not _local_stand_ins():
        return found
    try:
        with transaction.atomic():
            server, _ = MailServer.objects.get_or_create(
                shared=True,
                kind=MailServerKind.SANDBOX,
                hostname=SHARED_SANDBOX_HOSTNAME,
                defaults={
                    "tenant": None,
                    "smtp_host": settings.SANDBOX_SMTP_HOST,
                    "smtp_port": settings.SANDBOX_SMTP_PORT,
                    "imap_host": "",
                    "status": MailServerStatus.ACTIVE,
                },
            )
    except IntegrityError:  # pragma: no cover - two first uses at once; the other one won
        server = MailServer.objects.get(shared=True, hostname=SHARED_SANDBOX_HOSTNAME)
    return server if server.status == MailServerStatus.ACTIVE else None


def mail_server_for(tenant: Tenant) -> MailServer | None:
    """Where the tenant's new hosted mailboxes go: its own active server, else the shared one
    when its plan has no dedicated servers, else None (provision first)."""
    own = active_mail_server(tenant)
    if own is not None or not uses_shared_servers(tenant):
        return own
    return shared_mail_server()


def mailu_client_for(server: MailServer, **options: object) -> MailuClient:
    """A Mailu admin API client for `server` (close it, or use it as a context manager).

    Raises ValidationFailed for a sandbox server, which has no admin API; the token is revealed
    here only, and raises penguinmails.crypto.SecretUnavailable when the keys cannot open it.
    """
    if server.kind != MailServerKind.MAILU or not server.api_url or server.api_token is None:
        raise ValidationFailed(f"Mail server {server.hostname} has no Mailu admin API.")
    return MailuClient(server.api_url, server.api_token.reveal(), **options)  # type: ignore[arg-type]
