"""Which IP each sending domain (or mailbox) sends from, and the Postfix overrides that make it
so (docs/infrastructure.md, "Which IP mail leaves from").

- Domains are bound round-robin over the tenant's sending IPs, least-loaded first, and stay
  where they are: adding a domain or an IP never moves another domain (`assign_senders`).
- A binding on an IP that stopped sending (quarantined, released, made standby) follows the
  emergency migration's replacement when there is one (`services.ips.migrate_ip` moves them),
  otherwise it is re-spread over the remaining sending IPs.
- `bind_sender` pins a domain or one mailbox to an IP by hand.
- `render_for(vps)` reads the database and hands the pure `infrastructure.postfix` renderer one
  server's IPs and bindings; cloud-init writes the result at provisioning (steps.user_data_for)
  and the `infra.postfix.render` job re-renders and stores it (PostfixOverrides) after every
  change. No channel can write files on a running server yet: see the docs.

Infrastructure cannot read the tenant's sending domains (deliverability sits above it): the
deliverability app registers a provider at start-up (`register_sender_domains`), called inside
the tenant's schema, and enqueues a render when a domain is added or removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from infrastructure.models import (
    IP_SENDING,
    IpAddress,
    IpRole,
    PostfixOverrides,
    SenderIpBinding,
    VpsInstance,
    VpsStatus,
)
from infrastructure.postfix import (
    OutboundIp,
    OutboundPlan,
    PostfixConfigError,
    check_sender,
    digest,
    render_overrides,
)
from infrastructure.services.ips import request_render, sending_ip_names
from penguinmails.errors import NotFound, ValidationFailed
from tenants.models import Tenant, User
from tenants.services.audit import record as audit

SenderDomains = Callable[[Tenant], list[str]]
_sender_domains: list[SenderDomains] = []


def register_sender_domains(provider: SenderDomains) -> None:
    """Called from a higher app's AppConfig.ready(): the tenant's sending domain names (run in
    the tenant's schema)."""
    if provider not in _sender_domains:
        _sender_domains.append(provider)


def _domains_of(tenant: Tenant) -> list[str]:
    names: set[str] = set()
    for provider in _sender_domains:
        names.update(name.lower() for name in provider(tenant))
    return sorted(names)


def _sending_ips(tenant: Tenant) -> list[IpAddress]:
    return list(
        IpAddress.objects.filter(
            tenant=tenant, role=IpRole.SENDING, status__in=IP_SENDING, address__isnull=False
        ).order_by("-is_primary", "id")
    )


def _least_loaded(ips: list[IpAddress], load: Counter[int]) -> IpAddress:
    # min() keeps the first of equals: ties go to the primary, then the oldest IP.
    return min(ips, key=lambda ip: load[ip.pk])


def assign_senders(tenant: Tenant) -> list[SenderIpBinding]:
    """Bring the tenant's bindings in line with its domains and sending IPs; returns them.

    Runs in the tenant's schema (the domain provider reads it). Removed domains lose their
    binding (pinned mailboxes of a removed domain too); bindings on an IP that no longer sends
    are re-spread; unbound domains go to the least-loaded IP. With no sending IP there is
    nothing to bind: mail leaves from the server's main address.
    """
    domains = _domains_of(tenant)
    with transaction.atomic():
        ips = _sending_ips(tenant)
        sending = {ip.pk: ip for ip in ips}
        bindings = list(
            SenderIpBinding.objects.select_for_update().filter(tenant=tenant).order_by("sender")
        )
        live = set(domains)
        gone = [b.pk for b in bindings if b.sender.rpartition("@")[2] not in live]
        SenderIpBinding.objects.filter(pk__in=gone).delete()
        bindings = [b for b in bindings if b.pk not in gone]
        if not ips:
            return bindings
        load = Counter(b.ip_id for b in bindings if b.ip_id in sending)
        for binding in bindings:
            if binding.ip_id not in sending:
                target = _least_loaded(ips, load)
                SenderIpBinding.objects.filter(pk=binding.pk).update(ip=target)
                binding.ip, load[target.pk] = target, load[target.pk] + 1
        bound = {b.sender for b in bindings}
        for name in domains:
            if f"@{name}" not in bound:
                target = _least_loaded(ips, load)
                bindings.append(
                    SenderIpBinding.objects.create(tenant=tenant, sender=f"@{name}", ip=target)
                )
                load[target.pk] += 1
    return sorted(bindings, key=lambda b: b.sender)


def bind_sender(tenant: Tenant, *, sender: str, ip: IpAddress, actor: User | None) -> None:
    """Pin a domain (`@example.com` or `example.com`) or one mailbox to one of the tenant's
    sending IPs, then re-render. The round-robin never moves a pinned binding."""
    sender = sender.strip().lower()
    if "@" not in sender:
        sender = f"@{sender}"
    if not ip.address or ip.tenant_id != tenant.pk:
        raise NotFound("No such IP address.")
    if ip.role != IpRole.SENDING or ip.status not in IP_SENDING:
        raise ValidationFailed(
            f"{ip.address} does not send mail now.", fields={"ip": ["Not a sending IP."]}
        )
    try:
        check_sender(sender)
    except PostfixConfigError as exc:
        raise ValidationFailed(str(exc), fields={"sender": [str(exc)]}) from None
    with transaction.atomic():
        SenderIpBinding.objects.update_or_create(
            tenant=tenant, sender=sender, defaults={"ip": ip, "pinned": True}
        )
        audit("infra.sender_bound", tenant=tenant, actor=actor, sender=sender, ip=ip.address)
        request_render(tenant)


def plan_for(vps: VpsInstance) -> OutboundPlan:
    """One server's IPs (with their PTR names: `sending_ip_names`, what provisioning set) and
    the bindings of senders to them, from the database."""
    names = sending_ip_names(vps.tenant)
    mine = {
        str(address)
        for address in IpAddress.objects.filter(vps=vps, address__in=list(names)).values_list(
            "address", flat=True
        )
    }
    senders = dict(
        SenderIpBinding.objects.filter(tenant=vps.tenant, ip__vps=vps, ip__address__in=mine)
        .order_by("sender")
        .values_list("sender", "ip__address")
    )
    ips = tuple(OutboundIp(address, names[address].lower()) for address in sorted(mine))
    return OutboundPlan(ips=ips, senders={s: str(a) for s, a in senders.items()})


def render_for(vps: VpsInstance) -> dict[str, str]:
    """The override files of one server (file name -> content), rendered from the database."""
    return render_overrides(plan_for(vps))


def render_and_store(tenant: Tenant) -> list[PostfixOverrides]:
    """The render job: bindings brought up to date, then each live server's files rendered and
    stored (the row changes only when the content does)."""
    assign_senders(tenant)
    stored = []
    servers = VpsInstance.objects.filter(tenant=tenant).exclude(
        status__in=[VpsStatus.TERMINATED, VpsStatus.TERMINATING, VpsStatus.FAILED]
    )
    for vps in servers.select_related("tenant"):
        files = render_for(vps)
        fingerprint = digest(files)
        row = PostfixOverrides.objects.filter(vps=vps).first()
        if row is None or row.digest != fingerprint:
            row, _ = PostfixOverrides.objects.update_or_create(
                vps=vps,
                defaults={"files": files, "digest": fingerprint, "rendered_at": timezone.now()},
            )
            audit(
                "infra.postfix_rendered", tenant=tenant, actor=None, vps=vps.name, digest=row.digest
            )
        stored.append(row)
    return stored
