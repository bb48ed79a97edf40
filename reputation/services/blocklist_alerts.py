"""What a listing does beyond its record: quarantine and the emergency migration (through
infrastructure's services), and the emails to the tenant's owners and to staff."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from infrastructure.models import IP_SENDING, IpAddress, IpRole
from infrastructure.services.ips import migrate_ip, quarantine_ip
from penguinmails.alerts import Severity, raise_alert, resolve_alert
from penguinmails.errors import DomainError
from reputation.models import Blocklist, Listing
from tenants.models import Membership, Tenant, User
from tenants.permissions import BuiltinRole

log = logging.getLogger(__name__)

ALERT_RULE = "blocklist.listed"


def quarantine_reason(new: list[Listing], zones: dict[str, Blocklist]) -> str:
    parts = []
    for listing in new:
        where = zones[listing.zone].removal_url if listing.zone in zones else ""
        parts.append(
            f"{listing.list_name} ({listing.zone}) since {listing.listed_at:%Y-%m-%d %H:%M} UTC"
            + (f"; request removal at {where}" if where else "")
        )
    return ("Blocklisted: " + " | ".join(parts))[:500]


def quarantine(ip: IpAddress, reason: str) -> IpAddress:
    return quarantine_ip(ip, reason=reason, actor=None)


def move_sending(ip: IpAddress) -> IpAddress | None:
    """The emergency migration onto a clean IP of the same tenant (a standby spare first), or
    None when the tenant has none (staff are told)."""
    listed = Listing.objects.filter(kind="ip", status="listed").values_list("subject", flat=True)
    candidates = (
        IpAddress.objects.filter(tenant_id=ip.tenant_id, status__in=IP_SENDING)
        .exclude(pk=ip.pk)
        .exclude(address__isnull=True)
        .exclude(address__in=list(listed))
        .order_by("id")
    )
    ranked = sorted(candidates, key=lambda c: (c.role != IpRole.STANDBY, c.id))
    for target in ranked:
        try:
            return migrate_ip(ip, target, actor=None)
        except DomainError as exc:
            log.warning("blocklist: cannot move %s onto %s: %s", ip.address, target.address, exc)
    return None


def _owners(tenant: Tenant) -> list[str]:
    rows = Membership.objects.filter(
        tenant=tenant, is_active=True, role__tenant=None, role__slug=BuiltinRole.OWNER
    ).values_list("user__email", flat=True)
    return sorted(set(rows))


def _staff() -> list[str]:
    rows = User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True)
    return sorted(set(rows) | set(settings.BLOCKLIST_STAFF_EMAILS))


def _names(new: list[Listing]) -> list[str]:
    return sorted({x.list_name for x in new})


def _lines(new: list[Listing], zones: dict[str, Blocklist]) -> list[str]:
    lines = []
    for listing in new:
        url = zones[listing.zone].removal_url if listing.zone in zones else ""
        lines.append(
            f"- {listing.list_name} ({listing.zone}), listed since "
            f"{listing.listed_at:%Y-%m-%d %H:%M} UTC, answer {listing.answer}"
            + (f", reason: {listing.reason}" if listing.reason else "")
            + (f"\n  Request removal at {url}" if url else "")
        )
    return lines


def notify_listed(
    tenant: Tenant,
    subject: str,
    new: list[Listing],
    zones: dict[str, Blocklist],
    *,
    moved_to: IpAddress | None,
) -> None:
    """Email the tenant's owners and staff, after commit."""
    what = "IP address" if new[0].kind == "ip" else "sending domain"
    body = [f"Your {what} {subject} ({tenant.name}) was found on a DNS blocklist:", ""]
    body += _lines(new, zones)
    if new[0].kind == "ip":
        body += [
            "",
            "It is quarantined: no mail goes out from it until every list is clear.",
            f"Sending moved to {moved_to.address}."
            if moved_to is not None
            else "No clean IP of this workspace could take over its sending.",
        ]
    else:
        body += ["", "Nothing was moved; mail from this domain may land in spam meanwhile."]
    subject_line = f"[PenguinMails] {subject} is blocklisted ({', '.join(_names(new))})"
    _send_after_commit(subject_line, "\n".join(body), _owners(tenant))
    _send_after_commit(f"[staff] {subject_line} for {tenant.slug}", "\n".join(body), _staff())
    # The alert engine (webhook, admin and dashboard banners); staff have their email above.
    said = f"{what[:1].upper()}{what[1:]} {subject}"
    raise_alert(
        ALERT_RULE,
        f"{new[0].kind}:{subject}",
        summary=f"{said} is blocklisted ({', '.join(_names(new))}).",
        severity=Severity.CRITICAL if new[0].kind == "ip" else Severity.WARNING,
        detail={
            "lists": [x.zone for x in new],
            "moved_to": str(moved_to.address) if moved_to else None,
        },
        tenant_schema=tenant.schema_name,
        email_staff=False,
    )


def listing_cleared(kind: str, subject: str) -> None:
    """No list names the subject any more: its alert resolves."""
    resolve_alert(ALERT_RULE, f"{kind}:{subject}", note="delisted from every blocklist")


def notify_delisted(ip: IpAddress) -> None:
    text = f"{ip.address} is no longer on any blocklist we check; it is warming up again."
    _send_after_commit(f"[PenguinMails] {ip.address} is delisted", text, _owners(ip.tenant))


def _send_after_commit(subject: str, body: str, to: list[str]) -> None:
    if not to:
        return

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
        except Exception:
            # Addresses are personal data: not logged.
            log.exception("blocklist notice %r could not be sent", subject)

    transaction.on_commit(send)
