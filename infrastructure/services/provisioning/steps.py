"""The step jobs' machinery and the server's own steps: `run_step` turns vendor errors into the
queue's terms; create, wait for active, configure and terminate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from infrastructure.cloudinit import ConfigError, MailuConfig, TlsFlavor, build_user_data
from infrastructure.mailu import MailuError
from infrastructure.models import (
    IpAddress,
    IpRole,
    IpStatus,
    MailServer,
    MailServerStatus,
    VpsInstance,
    VpsStatus,
)
from infrastructure.providers import ProviderError, ServerStatus, VpsProvider, get_vps_provider
from infrastructure.services.ip_binding import render_for
from infrastructure.services.states import transition_ip, transition_vps
from infrastructure.sizes import antivirus_enabled
from penguinmails.errors import DomainError, IllegalTransition
from penguinmails.providers import VpsProviderName
from penguinmails.queue.producer import enqueue
from tenants.services.audit import record as audit

CREATE_TASK = "infra.vps.create"
WAIT_TASK = "infra.vps.wait_active"
CONFIGURE_TASK = "infra.vps.configure"
NETWORK_TASK = "infra.vps.network"
CHECK_TASK = "infra.vps.check_mail_server"
TERMINATE_TASK = "infra.vps.terminate"
# Attempts of each step job; the last attempt of a transient error fails the VPS with it.
STEP_MAX_ATTEMPTS = 5
# A server still building after this many polls is failed: something is wrong at the provider.
MAX_ACTIVE_POLLS = 40


class StepRetry(DomainError):
    """A transient failure of a provisioning step: the queue retries the job with backoff."""


def _poll_delay(polls: int) -> timedelta:
    """Backoff between 'is it active yet?' polls: base doubling to 5 minutes at most."""
    base = float(settings.INFRA_POLL_SECONDS)
    return timedelta(seconds=min(base * 2 ** min(polls, 8), 300.0))


def _location(provider: VpsProvider) -> str:
    return settings.HOSTWINDS_LOCATION_ID if provider.name == VpsProviderName.HOSTWINDS else "local"


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
            # What the database knows when the order goes out: a new server has no IPs yet (the
            # network step finds them), so its files start empty and the render job fills them.
            postfix_overrides=render_for(vps),
            staff_networks=tuple(settings.STAFF_NETWORKS),
            antivirus=antivirus_enabled(vps.size),
        )
    )


def step_create(vps: VpsInstance, job_id: int | None) -> None:
    """requested/creating → waiting_active: order the server (idempotent by name)."""
    if vps.status == VpsStatus.REQUESTED:
        transition_vps(vps, VpsStatus.CREATING, reason="ordering the server", job_id=job_id)
    provider = _provider_for(vps)
    user_data = user_data_for(vps)
    if vps.provider == VpsProviderName.HOSTWINDS:
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
