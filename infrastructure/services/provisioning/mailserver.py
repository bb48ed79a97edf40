"""The last step: the server's MailServer row, and Mailu's API answering our token."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from infrastructure.mailu import MailuError
from infrastructure.models import (
    MailServer,
    MailServerKind,
    MailServerStatus,
    VpsInstance,
    VpsStatus,
)
from infrastructure.services.mailservers import mailu_client_for
from infrastructure.services.states import transition_vps
from penguinmails import states
from penguinmails.providers import VpsProviderName
from tenants.services.audit import record as audit


def mailu_api_url(hostname: str) -> str:
    """Where a Mailu server's admin API answers (its front serves /api under WEB_API)."""
    template = settings.MAILU_API_URL_TEMPLATE
    return template.format(hostname=hostname)


def step_check_mail_server(vps: VpsInstance, job_id: int | None) -> None:
    """mail_server_check → active: the MailServer row, and Mailu's API answering our token.

    A 401/403 from Mailu is permanent (MailuAuthError): retrying would count toward Mailu's
    bad-token lock-out of our control plane.
    """
    server = _mail_server_for(vps)
    if server.kind == MailServerKind.MAILU:
        try:
            with mailu_client_for(server, attempts=1) as client:
                client.list_domains()
        except MailuError as exc:
            if exc.permanent:
                MailServer.objects.filter(pk=server.pk).update(last_error=str(exc)[:4000])
                states.transition(
                    MailServer.objects.filter(pk=server.pk),
                    MailServerStatus.UNREACHABLE,
                    reason=str(exc),
                    actor=job_id,
                )
            raise
    with transaction.atomic():
        MailServer.objects.filter(pk=server.pk).update(last_error="")
        states.transition(
            MailServer.objects.filter(pk=server.pk),
            MailServerStatus.ACTIVE,
            reason="Mailu's API answers" if server.kind == MailServerKind.MAILU else "sandbox",
            actor=job_id,
        )
        VpsInstance.objects.filter(pk=vps.pk).update(last_error="")
        transition_vps(
            vps, VpsStatus.ACTIVE, reason=f"{server.kind} mail server answers", job_id=job_id
        )
        audit("infra.vps_active", tenant=vps.tenant, actor=None, vps=vps.name)


def _mail_server_for(vps: VpsInstance) -> MailServer:
    """The VPS's mail server row, created once (one per VPS)."""
    if vps.provider == VpsProviderName.LOCAL:
        # No real Mailu behind loopback addresses: the sandbox SMTP server stands in.
        defaults = {
            "tenant": vps.tenant,
            "kind": MailServerKind.SANDBOX,
            "hostname": vps.hostname,
            "smtp_host": settings.SANDBOX_SMTP_HOST,
            "smtp_port": settings.SANDBOX_SMTP_PORT,
            "imap_host": "",
        }
    else:
        defaults = {
            "tenant": vps.tenant,
            "kind": MailServerKind.MAILU,
            "hostname": vps.hostname,
            "api_url": mailu_api_url(vps.hostname),
            # The same stored token the server was configured with (copied encrypted).
            "api_token": vps.mailu_api_token,
            "smtp_host": vps.hostname,
            "smtp_port": 587,
            "imap_host": vps.hostname,
            "imap_port": 993,
        }
    server, _ = MailServer.objects.get_or_create(vps=vps, defaults=defaults)
    return server
