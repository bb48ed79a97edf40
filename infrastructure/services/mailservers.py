"""Mail servers: which one a tenant's mailboxes go on, and a Mailu client for it."""

from __future__ import annotations

from infrastructure.mailu import MailuClient
from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from penguinmails.errors import ValidationFailed
from tenants.models import Tenant


def active_mail_server(tenant: Tenant) -> MailServer | None:
    """The tenant's active mail server (the oldest, when it has several), or None."""
    return (
        MailServer.objects.filter(tenant=tenant, status=MailServerStatus.ACTIVE)
        .order_by("created_at", "id")
        .first()
    )


def mailu_client_for(server: MailServer, **options: object) -> MailuClient:
    """A Mailu admin API client for `server` (close it, or use it as a context manager).

    Raises ValidationFailed for a sandbox server, which has no admin API; the token is revealed
    here only, and raises penguinmails.crypto.SecretUnavailable when the keys cannot open it.
    """
    if server.kind != MailServerKind.MAILU or not server.api_url or server.api_token is None:
        raise ValidationFailed(f"Mail server {server.hostname} has no Mailu admin API.")
    return MailuClient(server.api_url, server.api_token.reveal(), **options)  # type: ignore[arg-type]
