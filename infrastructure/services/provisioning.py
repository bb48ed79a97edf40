"""Provisioning and deprovisioning a tenant's servers (docs/infrastructure.md, "Provisioning").

`provision_infrastructure` turns the plan (vps_count, vps_size, dedicated_ips) into VpsInstance
rows and enqueues the first step of each. Every step is a job on the durable queue that advances
the VPS one state and enqueues the next:

    requested ─create─► creating ─► waiting_active ─wait (polls)─► configuring ─configure─►
    network ─network─► mail_server_check ─check─► active

A step finds the VPS in the status it expects or does nothing (a step that ran twice, or a stale
job after a retry), so re-running any step is harmless; creation is idempotent by the server's
name at the provider and the provider id is recorded as soon as it is known. A transient provider
or Mailu error is retried with the queue's backoff; a permanent one, or the last attempt of a
transient one, marks the VPS failed with the error shown to staff and the tenant.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from billing.entitlements import LimitReached, limits_for, lock_usage, plan_for
from billing.models import Plan
from infrastructure.cloudinit import ConfigError, MailuConfig, TlsFlavor, build_user_data
from infrastructure.mailu import MailuError
from infrastructure.models import (
    IpAddress,
    IpRole,
    IpStatus,
    MailServer,
    MailServerKind,
    MailServerStatus,
    VpsInstance,
    VpsStatus,
)
from infrastructure.providers import (
    NotSupported,
    ProviderError,
    ServerStatus,
    VpsProvider,
    get_vps_provider,
)
from infrastructure.services.mailservers import mailu_client_for
from infrastructure.services.states import transition_ip, transition_vps
from penguinmails import states
from penguinmails.errors import Conflict, DomainError, IllegalTransition
from penguinmails.models import Job
from penguinmails.queue.producer import enqueue
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

logger = logging.getLogger(__name__)

CREATE_TASK = "infra.vps.create"
WAIT_TASK = "infra.vps.wait_active"
CONFIGURE_TASK = "infra.vps.configure"
NETWORK_TASK = "infra.vps.network"
CHECK_TASK = "infra.vps.check_mail_server"
DISCOVER_TASK = "infra.discover_awaiting_ips"
TERMINATE_TASK = "infra.vps.terminate"
# Attempts of each step job; the last attempt of a transient error fails the VPS with it.
STEP_MAX_ATTEMPTS = 5
# A server still building after this many polls is failed: something is wrong at the provider.
MAX_ACTIVE_POLLS = 40

# Monthly cost of a server by plan size, and of one extra IPv4, in cents: what we pay the
# provider (Hostwinds list prices, USD), recorded per row so margins can be checked against the
# plan price (seed: "infrastructure costs must not exceed subscription revenue").
VPS_MONTHLY_COST_CENTS = {"small": 1099, "medium": 2999, "large": 8999}
IP_MONTHLY_COST_CENTS = 400


class StepRetry(DomainError):
    """A transient failure of a provisioning step: the queue retries the job with backoff."""


def _poll_delay(polls: int) -> timedelta:
    """Backoff between 'is it active yet?' polls: base doubling to 5 minutes at most."""
    base = float(settings.INFRA_POLL_SECONDS)
    return timedelta(seconds=min(base * 2 ** min(polls, 8), 300.0))


def _slug_label(tenant: Tenant) -> str:
    # Slugs may hold underscores or capitals; a host label may not.
    label = re.sub(r"[^a-z0-9-]+", "-", tenant.slug.lower()).strip("-")
    return label[:40] or f"t{tenant.pk}"


def _mail_domain() -> str:
    return settings.INFRA_MAIL_DOMAIN or settings.BASE_DOMAIN


def mailu_api_url(hostname: str) -> str:
    """Where a Mailu server's admin API answers (its front serves /api under WEB_API)."""
    template = settings.MAILU_API_URL_TEMPLATE
    return template.format(hostname=hostname)


def _ip_shares(total: int, servers: int) -> list[int]:
    """Split the plan's dedicated IPs across its servers, each keeping at least its main IP."""
    total = max(total, servers)
    base, extra = divmod(total, servers)
    return [base + (1 if i < extra else 0) for i in range(servers)]


def _upgrade_with_servers(current: Plan) -> Plan | None:
    for plan in Plan.objects.filter(is_public=True).order_by("monthly_price", "sort_order", "pk"):
        if plan.pk != current.pk and plan.parsed_limits.vps_count > 0:
            return plan
    return None


def live_servers(tenant: Tenant) -> QuerySet[VpsInstance]:
    """The tenant's servers that are not terminated (failed ones included: they can be retried)."""
    return VpsInstance.objects.filter(tenant=tenant).exclude(
        status__in=[VpsStatus.TERMINATED, VpsStatus.TERMINATING]
    )


# --- asking for servers -------------------------------------------------------------------------


def provision_for(principal: Principal) -> list[VpsInstance]:
    """The dashboard's and API's "Provision": infrastructure:write in the principal's tenant."""
    require(principal, Area.INFRASTRUCTURE, Level.WRITE)
    return provision_infrastructure(principal.tenant, actor=principal.user)


def provision_infrastructure(tenant: Tenant, *, actor: User | None) -> list[VpsInstance]:
    """Create the servers the tenant's plan includes and enqueue their first step.

    Refuses with LimitReached when the plan includes no server (shared sending), and with
    Conflict when every server the plan includes already exists.
    """
    with transaction.atomic():
        lock_usage(tenant)  # two "Provision" clicks at once create one set of servers
        plan = plan_for(tenant)
        limits = limits_for(tenant)
        if limits.vps_count <= 0:
            message = (
                f"Your {plan.name} plan includes no dedicated servers: it sends from shared "
                "servers."
            )
            upgrade = _upgrade_with_servers(plan)
            if upgrade is not None:
                message += (
                    f" Upgrade to {upgrade.name} for {upgrade.parsed_limits.vps_count} "
                    f"dedicated server(s) and {upgrade.parsed_limits.dedicated_ips} "
                    "dedicated IP(s)."
                )
            raise LimitReached(message)
        existing = live_servers(tenant).count()
        missing = limits.vps_count - existing
        if missing <= 0:
            raise Conflict(
                f"{tenant.name} already has the {limits.vps_count} server(s) its {plan.name} "
                "plan includes."
            )
        shares = _ip_shares(limits.dedicated_ips, limits.vps_count)
        provider = get_vps_provider()
        seq = VpsInstance.objects.filter(tenant=tenant).count()
        label = _slug_label(tenant)
        created: list[VpsInstance] = []
        for index in range(existing, limits.vps_count):
            seq += 1
            vps = VpsInstance.objects.create(
                tenant=tenant,
                provider=provider.name,
                name=f"pm-{label}-{seq}",
                hostname=f"mail{seq}.{label}.{_mail_domain()}",
                size=limits.vps_size,
                location=_location(provider),
                ip_quota=shares[index],
                monthly_cost_cents=VPS_MONTHLY_COST_CENTS.get(limits.vps_size, 0),
                # Generated once and kept: a re-run create step sends the same configuration.
                mailu_api_token=secrets.token_urlsafe(32),
                mailu_secret_key=secrets.token_urlsafe(24),
            )
            job = enqueue(
                CREATE_TASK, {"vps_id": vps.pk}, tenant=tenant, max_attempts=STEP_MAX_ATTEMPTS
            )
            VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)
            created.append(vps)
        audit(
            "infra.provision",
            tenant=tenant,
            actor=actor,
            plan=plan.slug,
            servers=[v.name for v in created],
            size=limits.vps_size,
        )
    return created


def retry_provisioning(vps: VpsInstance, *, actor: User | None) -> Job:
    """Start a failed VPS over from its first step (which finds its server by name)."""
    with transaction.atomic():
        vps = VpsInstance.objects.select_for_update().get(pk=vps.pk)
        if vps.status != VpsStatus.FAILED:
            raise IllegalTransition(
                f"{vps.name} is {VpsStatus(vps.status).label.lower()}; only a failed server "
                "can be retried."
            )
        transition_vps(vps, VpsStatus.REQUESTED, reason="retry asked")
        VpsInstance.objects.filter(pk=vps.pk).update(last_error="", polls=0)
        job = enqueue(
            CREATE_TASK, {"vps_id": vps.pk}, tenant=vps.tenant, max_attempts=STEP_MAX_ATTEMPTS
        )
        VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)
        audit("infra.retry", tenant=vps.tenant, actor=actor, vps=vps.name)
    return job


def deprovision_infrastructure(tenant: Tenant, *, actor: User | None) -> list[VpsInstance]:
    """Terminate every server of the tenant (a job each) and release their IPs."""
    with transaction.atomic():
        servers = list(
            VpsInstance.objects.select_for_update()
            .filter(tenant=tenant)
            .exclude(status__in=[VpsStatus.TERMINATED, VpsStatus.TERMINATING])
        )
        if not servers:
            raise Conflict(f"{tenant.name} has no servers to deprovision.")
        for vps in servers:
            _start_termination(vps, reason="deprovision asked")
        audit("infra.deprovision", tenant=tenant, actor=actor, servers=[v.name for v in servers])
    return servers


def terminate_vps(vps: VpsInstance, *, actor: User | None) -> Job:
    """Terminate one server (staff): the admin's action."""
    with transaction.atomic():
        vps = VpsInstance.objects.select_for_update().get(pk=vps.pk)
        job = _start_termination(vps, reason="terminate asked")
        audit("infra.terminate", tenant=vps.tenant, actor=actor, vps=vps.name)
    return job


def _start_termination(vps: VpsInstance, *, reason: str) -> Job:
    transition_vps(vps, VpsStatus.TERMINATING, reason=reason)
    job = enqueue(
        TERMINATE_TASK, {"vps_id": vps.pk}, tenant=vps.tenant, max_attempts=STEP_MAX_ATTEMPTS
    )
    VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)
    return job


# --- the steps (job handlers call these) --------------------------------------------------------


def _location(provider: VpsProvider) -> str:
    return settings.HOSTWINDS_LOCATION_ID if provider.name == "hostwinds" else "local"


def _provider_for(vps: VpsInstance) -> VpsProvider:
    provider = get_vps_provider()
    if provider.name != vps.provider:
        raise ProviderError(
            f"{vps.name} was created at {vps.provider}, but the settings now choose "
            f"{provider.name}.",
            permanent=True,
        )
    return provider


def _load(vps_id: int, *expected: str) -> VpsInstance | None:
    """The VPS when it is in one of the statuses this step handles; None for a stale job."""
    vps = VpsInstance.objects.select_related("tenant").filter(pk=vps_id).first()
    if vps is None or vps.status not in expected:
        return None
    return vps


def _next(vps: VpsInstance, task: str, *, run_at: object = None) -> None:
    job = enqueue(
        task,
        {"vps_id": vps.pk},
        tenant=vps.tenant,
        run_at=run_at,  # type: ignore[arg-type]
        max_attempts=STEP_MAX_ATTEMPTS,
    )
    VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)


def _fail(vps: VpsInstance, error: str, *, job_id: int | None) -> None:
    """Mark the VPS failed with the error (shown to staff and tenant; never holds a secret)."""
    with transaction.atomic():
        fresh = VpsInstance.objects.select_for_update().get(pk=vps.pk)
        VpsInstance.objects.filter(pk=vps.pk).update(last_error=error[:4000])
        if fresh.status in (VpsStatus.FAILED, VpsStatus.TERMINATED):
            return
        transition_vps(fresh, VpsStatus.FAILED, reason=error, job_id=job_id)
        audit("infra.vps_failed", tenant=fresh.tenant, actor=None, vps=fresh.name, error=error)
    vps.status = VpsStatus.FAILED
    vps.last_error = error


def run_step(
    step: Callable[[VpsInstance, int | None], None],
    vps_id: int,
    *,
    expected: tuple[str, ...],
    job_id: int | None,
    attempt: int,
) -> None:
    """Run one step for a VPS in an expected status, turning vendor errors into the queue's terms.

    Permanent errors (and the last attempt of transient ones) fail the VPS and end the job;
    transient ones are recorded on the VPS and raised as StepRetry for the queue's backoff.
    """
    vps = _load(vps_id, *expected)
    if vps is None:
        return  # ran twice, or the VPS moved on (retried, terminated): nothing to do
    try:
        step(vps, job_id)
    except (ProviderError, MailuError) as exc:
        message = str(exc)
        if exc.permanent or attempt >= STEP_MAX_ATTEMPTS:
            if not exc.permanent:
                message = f"{message} (gave up after {attempt} attempts)"
            _fail(vps, message, job_id=job_id)
            return
        VpsInstance.objects.filter(pk=vps.pk).update(last_error=message[:4000])
        raise StepRetry(message) from exc
    except ConfigError as exc:
        _fail(vps, f"Mailu configuration refused: {exc}", job_id=job_id)
    except IllegalTransition:
        return  # a concurrent run of the same step moved it first


def user_data_for(vps: VpsInstance) -> str:
    """The cloud-init document that installs Mailu on this server."""
    assert vps.mailu_api_token is not None and vps.mailu_secret_key is not None
    mail_domain = vps.hostname.split(".", 1)[1]
    return build_user_data(
        MailuConfig(
            hostname=vps.hostname,
            mail_domain=mail_domain,
            admin_email=f"admin@{mail_domain}",
            api_token=vps.mailu_api_token.reveal(),
            secret_key=vps.mailu_secret_key.reveal(),
            dkim_selector=settings.MAILU_DKIM_SELECTOR,
            tls_flavor=TlsFlavor(settings.MAILU_TLS_FLAVOR),
            mailu_version=settings.MAILU_VERSION,
        )
    )


def step_create(vps: VpsInstance, job_id: int | None) -> None:
    """requested/creating → waiting_active: order the server (idempotent by name)."""
    if vps.status == VpsStatus.REQUESTED:
        transition_vps(vps, VpsStatus.CREATING, reason="ordering the server", job_id=job_id)
    provider = _provider_for(vps)
    user_data = user_data_for(vps)
    if vps.provider == "hostwinds":
        plan_id = settings.HOSTWINDS_PLAN_IDS.get(vps.size, "")
        if not plan_id:
            raise ProviderError(
                f"HOSTWINDS_PLAN_IDS has no plan id for size {vps.size!r}.", permanent=True
            )
        spec = {"plan": plan_id, "image": settings.HOSTWINDS_IMAGE_ID}
        ssh_keys = list(settings.HOSTWINDS_SSH_KEYS)
    else:
        spec = {"plan": vps.size, "image": "local"}
        ssh_keys = []
    ref = provider.create_server(
        name=vps.name, location=vps.location, user_data=user_data, ssh_keys=ssh_keys, **spec
    )
    # Recorded at once, outside the transition: whatever happens next, we know our server.
    VpsInstance.objects.filter(pk=vps.pk).update(
        provider_id=ref.id, user_data_applied=ref.user_data_applied
    )
    vps.provider_id, vps.user_data_applied = ref.id, ref.user_data_applied
    with transaction.atomic():
        transition_vps(
            vps,
            VpsStatus.WAITING_ACTIVE,
            reason=f"server {ref.id} {'ordered' if ref.created else 'found by name'}",
            job_id=job_id,
        )
        _next(vps, WAIT_TASK)


def step_wait_active(vps: VpsInstance, job_id: int | None) -> None:
    """waiting_active → configuring once the provider says active; else poll again later."""
    info = _provider_for(vps).get_server(vps.provider_id)
    if info.status is ServerStatus.ACTIVE:
        with transaction.atomic():
            VpsInstance.objects.filter(pk=vps.pk).update(main_ip=info.main_ip, last_error="")
            transition_vps(
                vps, VpsStatus.CONFIGURING, reason=f"active at {info.main_ip}", job_id=job_id
            )
            _next(vps, CONFIGURE_TASK)
        return
    if info.status in (ServerStatus.ERROR, ServerStatus.TERMINATED, ServerStatus.STOPPED):
        raise ProviderError(
            f"The provider reports server {vps.provider_id} as {info.raw_status or info.status}.",
            permanent=True,
        )
    polls = vps.polls + 1
    if polls > MAX_ACTIVE_POLLS:
        raise ProviderError(
            f"Server {vps.provider_id} was still {info.raw_status or info.status} after "
            f"{MAX_ACTIVE_POLLS} checks.",
            permanent=True,
        )
    with transaction.atomic():
        VpsInstance.objects.filter(pk=vps.pk).update(polls=polls)
        _next(vps, WAIT_TASK, run_at=timezone.now() + _poll_delay(polls))


def step_configure(vps: VpsInstance, job_id: int | None) -> None:
    """configuring → network. Cloud-init applies the Mailu configuration on first boot; when the
    provider could not take user data, the VPS is flagged for staff and provisioning goes on
    (the mail server check will fail until Mailu answers)."""
    reason = "cloud-init user data applied at boot"
    if not vps.user_data_applied:
        reason = (
            "the provider could not take cloud-init user data: configure Mailu on the server "
            "by hand (docs/infrastructure.md)"
        )
        VpsInstance.objects.filter(pk=vps.pk).update(needs_attention=reason)
    with transaction.atomic():
        transition_vps(vps, VpsStatus.NETWORK, reason=reason, job_id=job_id)
        _next(vps, NETWORK_TASK)


def step_network(vps: VpsInstance, job_id: int | None) -> None:
    """network → mail_server_check: the main IP, secondary IPs up to the quota, PTR records."""
    provider = _provider_for(vps)
    info = provider.get_server(vps.provider_id)
    ips = list(IpAddress.objects.filter(vps=vps).exclude(status=IpStatus.RELEASED))
    known = {ip.address for ip in ips if ip.address}
    if info.main_ip and info.main_ip not in known:
        ips.append(_new_ip(vps, info.main_ip, primary=True))
        known.add(info.main_ip)
    # IPs that appeared at the provider (ordered earlier, or by staff in its portal).
    for address in info.secondary_ips:
        if address not in known:
            ips.append(_discovered(vps, address))
            known.add(address)
    while len(ips) < vps.ip_quota:
        try:
            added = provider.add_secondary_ip(vps.provider_id)
        except NotSupported as exc:
            ips.append(_awaiting(vps, reason=str(exc)))
            continue
        if added is None:
            ips.append(_awaiting(vps, reason="ordered; will appear at the provider", ordered=True))
        else:
            ips.append(_new_ip(vps, added, primary=False))
    for ip in ips:
        if ip.address and not ip.ptr_set and ip.status != IpStatus.QUARANTINED:
            provider.set_reverse_dns(vps.provider_id, ip.address, vps.hostname)
            IpAddress.objects.filter(pk=ip.pk).update(ptr_hostname=vps.hostname, ptr_set=True)
    waiting = sum(1 for ip in ips if not ip.address)
    reason = f"{len(ips) - waiting} IP(s) with PTR {vps.hostname}"
    if waiting:
        reason += f"; {waiting} awaiting order"
    with transaction.atomic():
        transition_vps(vps, VpsStatus.MAIL_SERVER_CHECK, reason=reason, job_id=job_id)
        _next(vps, CHECK_TASK)


def _new_ip(vps: VpsInstance, address: str, *, primary: bool) -> IpAddress:
    with transaction.atomic():
        ip = IpAddress.objects.create(
            vps=vps,
            tenant=vps.tenant,
            address=address,
            is_primary=primary,
            # The main IP comes with the server; extra ones are billed.
            monthly_cost_cents=0 if primary else IP_MONTHLY_COST_CENTS,
        )
        transition_ip(ip, IpStatus.ASSIGNED, reason="on the server")
    return ip


def _awaiting(vps: VpsInstance, *, reason: str, ordered: bool = False) -> IpAddress:
    with transaction.atomic():
        ip = IpAddress.objects.create(
            vps=vps, tenant=vps.tenant, monthly_cost_cents=IP_MONTHLY_COST_CENTS
        )
        if not ordered:
            transition_ip(ip, IpStatus.AWAITING_ORDER, reason=reason)
    return ip


def _discovered(vps: VpsInstance, address: str) -> IpAddress:
    """An address that appeared at the provider: fills the oldest IP waiting for one."""
    with transaction.atomic():
        waiting = (
            IpAddress.objects.select_for_update()
            .filter(vps=vps, address__isnull=True)
            .exclude(status=IpStatus.RELEASED)
            .order_by("id")
            .first()
        )
        if waiting is None:
            return _new_ip(vps, address, primary=False)
        IpAddress.objects.filter(pk=waiting.pk).update(address=address)
        waiting.address = address
        transition_ip(waiting, IpStatus.ASSIGNED, reason="appeared at the provider")
    return waiting


def discover_ips(vps: VpsInstance, *, actor: User | None) -> list[IpAddress]:
    """Pick up IPs staff ordered in the provider's portal (and set their PTR). Staff action."""
    provider = _provider_for(vps)
    info = provider.get_server(vps.provider_id)
    known = set(
        IpAddress.objects.filter(vps=vps, address__isnull=False)
        .exclude(status=IpStatus.RELEASED)
        .values_list("address", flat=True)
    )
    found = [_discovered(vps, a) for a in info.secondary_ips if a not in known]
    for ip in found:
        assert ip.address is not None
        provider.set_reverse_dns(vps.provider_id, ip.address, vps.hostname)
        IpAddress.objects.filter(pk=ip.pk).update(ptr_hostname=vps.hostname, ptr_set=True)
    if found:
        audit(
            "infra.ips_discovered",
            tenant=vps.tenant,
            actor=actor,
            vps=vps.name,
            ips=[ip.address for ip in found],
        )
    return found


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
    if vps.provider == "local":
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


def step_terminate(vps: VpsInstance, job_id: int | None) -> None:
    """terminating → terminated: delete the server at the provider, release its IPs, retire its
    mail server. A server never recorded is looked up by name (an order may have gone out)."""
    provider = _provider_for(vps)
    server_id = vps.provider_id
    if not server_id:
        found = provider.find_server(vps.name)
        server_id = found.id if found is not None else ""
    if server_id:
        provider.terminate_server(server_id)
    with transaction.atomic():
        for ip in IpAddress.objects.filter(vps=vps).exclude(status=IpStatus.RELEASED):
            transition_ip(ip, IpStatus.RELEASED, reason="server terminated")
            IpAddress.objects.filter(pk=ip.pk).update(role=IpRole.STANDBY)
        MailServer.objects.filter(vps=vps).update(status=MailServerStatus.RETIRED)
        transition_vps(
            vps, VpsStatus.TERMINATED, reason="terminated at the provider", job_id=job_id
        )
        audit("infra.vps_terminated", tenant=vps.tenant, actor=None, vps=vps.name)


def discover_awaiting_ips() -> int:
    """Periodic: for every live server with an IP still awaiting its order, ask the provider
    whether staff have attached it yet. Reads only the public IP table (no tenant scan); a
    provider that fails for one server does not stop the others. Returns how many appeared."""
    vps_ids = (
        IpAddress.objects.filter(status=IpStatus.AWAITING_ORDER, address__isnull=True)
        .values_list("vps_id", flat=True)
        .distinct()
    )
    found = 0
    for vps in VpsInstance.objects.filter(pk__in=list(vps_ids), status=VpsStatus.ACTIVE):
        try:
            found += len(discover_ips(vps, actor=None))
        except ProviderError as exc:
            logger.warning("IP discovery for %s failed: %s", vps.name, exc)
    return found
