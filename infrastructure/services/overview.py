"""Read side: what a tenant's infrastructure looks like now (dashboard, API and command share it).

No secrets here: tokens stay on the models and are never put in an overview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infrastructure.models import (
    VPS_STEPS,
    IpAddress,
    IpStatus,
    MailServer,
    MailServerStatus,
    VpsInstance,
    VpsResourceSample,
    VpsStatus,
)
from infrastructure.services import resources
from tenants.models import Tenant

# Rows that no longer cost anything (kept for history).
_GONE_VPS = (VpsStatus.TERMINATED,)
_GONE_IP = (IpStatus.RELEASED,)


@dataclass(frozen=True)
class Overview:
    servers: list[VpsInstance]
    ips: list[IpAddress]
    mail_servers: list[MailServer]
    # The newest resource reading of each server, and the plan's thresholds they are held to.
    samples: dict[int, VpsResourceSample] = field(default_factory=dict)
    thresholds: resources.Thresholds | None = None

    @property
    def resource_rows(self) -> list[tuple[VpsInstance, VpsResourceSample | None]]:
        """(server, its newest reading) for the servers that are read (active ones) or were."""
        return [
            (v, self.samples.get(v.pk))
            for v in self.servers
            if v.status in resources.MONITORED or v.pk in self.samples
        ]

    @property
    def in_progress(self) -> bool:
        return any(v.in_progress for v in self.servers)

    @property
    def monthly_cost_cents(self) -> int:
        servers = sum(v.monthly_cost_cents for v in self.servers if v.status not in _GONE_VPS)
        ips = sum(ip.monthly_cost_cents for ip in self.ips if ip.status not in _GONE_IP)
        return servers + ips


def overview(tenant: Tenant, *, include_gone: bool = False) -> Overview:
    """The tenant's servers, IPs and mail servers (terminated/released/retired ones only on ask)."""
    servers = VpsInstance.objects.filter(tenant=tenant).order_by("created_at", "id")
    ips = IpAddress.objects.filter(tenant=tenant).select_related("vps").order_by("vps_id", "id")
    mail = MailServer.objects.filter(tenant=tenant).order_by("created_at", "id")
    if not include_gone:
        servers = servers.exclude(status__in=_GONE_VPS)
        ips = ips.exclude(status__in=_GONE_IP)
        mail = mail.exclude(status=MailServerStatus.RETIRED)
    server_list = list(servers)
    return Overview(
        server_list,
        list(ips),
        list(mail),
        samples=resources.latest_samples(v.pk for v in server_list),
        thresholds=resources.thresholds_for(tenant),
    )


def vps_summary(vps: VpsInstance) -> dict[str, Any]:
    return {
        "id": vps.pk,
        "name": vps.name,
        "hostname": vps.hostname,
        "provider": vps.provider,
        "size": vps.size,
        "location": vps.location,
        "main_ip": vps.main_ip,
        "status": vps.status,
        "step": vps.step_number,
        "steps": len(VPS_STEPS),
        "in_progress": vps.in_progress,
        "needs_attention": vps.needs_attention,
        "last_error": vps.last_error,
        "monthly_cost_cents": vps.monthly_cost_cents,
        "created_at": vps.created_at.isoformat(),
    }


def ip_summary(ip: IpAddress) -> dict[str, Any]:
    return {
        "id": ip.pk,
        "address": ip.address,
        "vps": ip.vps.name,
        "is_primary": ip.is_primary,
        "role": ip.role,
        "status": ip.status,
        "ptr_hostname": ip.ptr_hostname,
        "ptr_set": ip.ptr_set,
        "reputation_score": ip.reputation_score,
        "quarantine_reason": ip.quarantine_reason,
        "monthly_cost_cents": ip.monthly_cost_cents,
    }


def mail_server_summary(server: MailServer) -> dict[str, Any]:
    return {
        "id": server.pk,
        "kind": server.kind,
        "hostname": server.hostname,
        "smtp_host": server.smtp_host,
        "smtp_port": server.smtp_port,
        "imap_host": server.imap_host,
        "imap_port": server.imap_port,
        "status": server.status,
    }


def as_dict(view: Overview) -> dict[str, Any]:
    thresholds = view.thresholds or resources.Thresholds(0, 0, 0)
    servers = []
    for v in view.servers:
        row = vps_summary(v)
        row["resources"] = resources.resources_summary(view.samples.get(v.pk), thresholds)
        servers.append(row)
    return {
        "servers": servers,
        "ips": [ip_summary(ip) for ip in view.ips],
        "mail_servers": [mail_server_summary(m) for m in view.mail_servers],
        "in_progress": view.in_progress,
        "monthly_cost_cents": view.monthly_cost_cents,
    }
