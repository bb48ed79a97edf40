"""CPU, memory and disk of every active server, checked against its plan's thresholds.

Beat enqueues `infra.resources_due` every VPS_RESOURCES_INTERVAL_SECONDS; it enqueues one
`infra.collect_resources` job per active server, spread over the interval by the server's id
(no burst of scrapes at :00). Each job reads the figures from the provider's API when it offers
them (`VpsProvider.server_resources`; neither Hostwinds nor the local provider does: see
docs/infrastructure.md), otherwise from node_exporter on the server, stores a sample (a short
history is kept) and raises or resolves the alert "infra.vps_resources" for that server: raised
while any figure is over the tenant's plan thresholds (billing.Plan.*_alert_percent), resolved
once all are back under. A failed reading is stored with its error and leaves the alert as it
is: not knowing is not the same as being fine.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.entitlements import plan_for
from infrastructure import node_exporter
from infrastructure.models import ResourceSource, VpsInstance, VpsResourceSample, VpsStatus
from infrastructure.providers import (
    NotSupported,
    ProviderError,
    ResourceFigures,
    get_vps_provider,
)
from penguinmails.alerts import Severity, open_alerts, raise_alert, resolve_alert
from penguinmails.queue.producer import JobSpec, enqueue_many
from tenants.models import Tenant

ALERT_RULE = "infra.vps_resources"
DUE_TASK = "infra.resources_due"
COLLECT_TASK = "infra.collect_resources"
MONITORED = (VpsStatus.ACTIVE,)
FIGURES = ("cpu", "memory", "disk")
# Over this, the alert is critical whatever the plan's threshold (a full disk stops the mail).
CRITICAL_PERCENT = 95.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """A plan's limits in percent: a figure above its limit counts as over."""

    cpu: int
    memory: int
    disk: int

    def over(self, figures: ResourceFigures) -> list[str]:
        limits = {"cpu": self.cpu, "memory": self.memory, "disk": self.disk}
        return [
            name
            for name in FIGURES
            if (value := getattr(figures, f"{name}_percent")) is not None and value > limits[name]
        ]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def thresholds_for(tenant: Tenant) -> Thresholds:
    plan = plan_for(tenant)
    return Thresholds(plan.cpu_alert_percent, plan.memory_alert_percent, plan.disk_alert_percent)


def alert_subject(vps: VpsInstance) -> str:
    return f"vps:{vps.name}"


# --- scheduling -----------------------------------------------------------------------------


def spread_offset(vps_id: int, interval: int) -> int:
    """Seconds into the interval at which this server is read: fixed per server, scattered
    across servers (Knuth's multiplicative hash), so reads of many servers do not bunch."""
    return (vps_id * 2654435761) % max(1, interval)


def schedule_collection(now: dt.datetime | None = None) -> int:
    """One collection job per active server, each at its offset into the interval; a server
    whose previous job is still waiting keeps that one (idempotency key). Returns how many.

    The alert of a server that is no longer read (suspended, failed, terminated) resolves here:
    nothing would ever clear it otherwise."""
    now = now or timezone.now()
    interval = settings.VPS_RESOURCES_INTERVAL_SECONDS
    servers = dict(
        VpsInstance.objects.filter(status__in=MONITORED).order_by("id").values_list("id", "name")
    )
    ids = list(servers)
    watched = {f"vps:{name}" for name in servers.values()}
    for subject in open_alerts().filter(rule=ALERT_RULE).values_list("subject", flat=True):
        if subject not in watched:
            resolve_alert(ALERT_RULE, subject, note="The server is no longer active.", now=now)
    enqueue_many(
        JobSpec(
            COLLECT_TASK,
            {"vps_id": pk},
            run_at=now + dt.timedelta(seconds=spread_offset(pk, interval)),
            idempotency_key=f"vps-resources:{pk}",
        )
        for pk in ids
    )
    return len(ids)


# --- reading ---------------------------------------------------------------------------------


def exporter_url(vps: VpsInstance) -> str:
    ip = vps.main_ip or ""
    host = f"[{ip}]" if ":" in ip else ip  # an IPv6 address is bracketed in a URL
    return settings.NODE_EXPORTER_URL_TEMPLATE.format(ip=host, hostname=vps.hostname)


def _figures_of(sample: VpsResourceSample | None) -> ResourceFigures | None:
    if sample is None:
        return None
    return ResourceFigures(
        cpu_percent=sample.cpu_percent,
        memory_percent=sample.memory_percent,
        disk_percent=sample.disk_percent,
        cpu_busy_seconds=sample.cpu_busy_seconds,
        cpu_total_seconds=sample.cpu_total_seconds,
    )


def read_figures(
    vps: VpsInstance, previous: ResourceFigures | None
) -> tuple[ResourceSource, ResourceFigures]:
    """The provider's figures when its API has them, else node_exporter's."""
    provider = get_vps_provider()
    if provider.name == vps.provider and vps.provider_id:
        try:
            return ResourceSource.PROVIDER, provider.server_resources(vps.provider_id)
        except NotSupported:
            pass
    if not vps.main_ip:
        raise node_exporter.ExporterError("The server has no main IP yet.")
    figures = node_exporter.read(
        exporter_url(vps), timeout=settings.NODE_EXPORTER_TIMEOUT_SECONDS, previous=previous
    )
    return ResourceSource.NODE_EXPORTER, figures


def _previous(vps: VpsInstance, now: dt.datetime) -> VpsResourceSample | None:
    """The last good reading recent enough to take a CPU percentage against."""
    window = dt.timedelta(seconds=3 * settings.VPS_RESOURCES_INTERVAL_SECONDS)
    return (
        VpsResourceSample.objects.filter(vps=vps, error="", taken_at__gte=now - window)
        .order_by("-taken_at", "-id")
        .first()
    )


def collect(vps_id: int, *, now: dt.datetime | None = None) -> VpsResourceSample | None:
    """Read one server, store the sample, raise or resolve its alert. None when the server is
    no longer monitored (terminated, suspended, failed since the job was enqueued)."""
    now = now or timezone.now()
    vps = VpsInstance.objects.select_related("tenant").filter(pk=vps_id).first()
    if vps is None or vps.status not in MONITORED:
        return None
    source = ResourceSource.NODE_EXPORTER
    error = ""
    try:
        source, figures = read_figures(vps, _figures_of(_previous(vps, now)))
    except (node_exporter.ExporterError, ProviderError) as exc:
        figures, error = ResourceFigures(None, None, None), str(exc)[:500]
        _log_failure(vps, error)
    thresholds = thresholds_for(vps.tenant)
    retention = dt.timedelta(hours=settings.VPS_RESOURCE_RETENTION_HOURS)
    with transaction.atomic():
        sample = VpsResourceSample.objects.create(
            vps=vps,
            taken_at=now,
            source=source,
            error=error,
            over=[] if error else thresholds.over(figures),
            **asdict(figures),
        )
        VpsResourceSample.objects.filter(vps=vps, taken_at__lt=now - retention).delete()
        if not error:
            _alert(vps, sample, thresholds)
    return sample


def _log_failure(vps: VpsInstance, error: str) -> None:
    """A warning when a server's figures become unreadable, not at every interval after: the
    failing reading is on the infrastructure page and in the admin with its reason."""
    last = VpsResourceSample.objects.filter(vps=vps).order_by("-taken_at", "-id").first()
    new = last is None or not last.error
    log.log(logging.WARNING if new else logging.INFO, "resources of %s: %s", vps.name, error)


def _alert(vps: VpsInstance, sample: VpsResourceSample, thresholds: Thresholds) -> None:
    subject = alert_subject(vps)
    if not sample.over:
        resolve_alert(ALERT_RULE, subject, note="Back under the plan's thresholds.")
        return
    limits = thresholds.as_dict()
    values = {name: getattr(sample, f"{name}_percent") for name in FIGURES}
    passed = ", ".join(f"{n} {values[n]:.0f}% (limit {limits[n]}%)" for n in sample.over)
    critical = any(values[n] >= CRITICAL_PERCENT for n in sample.over)
    raise_alert(
        ALERT_RULE,
        subject,
        summary=f"{vps.hostname} is over its plan's thresholds: {passed}.",
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        detail={
            "vps_id": vps.pk,
            "vps": vps.name,
            "figures": values,
            "thresholds": limits,
            "over": list(sample.over),
            "taken_at": sample.taken_at.isoformat(),
        },
        tenant_schema=vps.tenant.schema_name,
    )


# --- read side (page, API, admin, command) --------------------------------------------------


def latest_samples(vps_ids: Iterable[int]) -> dict[int, VpsResourceSample]:
    """The newest sample of each server, in one query."""
    rows = (
        VpsResourceSample.objects.filter(vps_id__in=list(vps_ids))
        .order_by("vps_id", "-taken_at", "-id")
        .distinct("vps_id")
    )
    return {row.vps_id: row for row in rows}


def history(vps: VpsInstance, *, limit: int = 48) -> list[VpsResourceSample]:
    return list(VpsResourceSample.objects.filter(vps=vps).order_by("-taken_at", "-id")[:limit])


def sample_summary(sample: VpsResourceSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {
        "taken_at": sample.taken_at.isoformat(),
        "source": sample.source,
        "error": sample.error,
        "cpu_percent": sample.cpu_percent,
        "memory_percent": sample.memory_percent,
        "disk_percent": sample.disk_percent,
        "memory_total_bytes": sample.memory_total_bytes,
        "disk_total_bytes": sample.disk_total_bytes,
        "disk_mountpoint": sample.disk_mountpoint,
        "cpu_count": sample.cpu_count,
        "over": list(sample.over),
    }


def resources_summary(
    sample: VpsResourceSample | None, thresholds: Thresholds, history_rows: Iterable[Any] = ()
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "latest": sample_summary(sample),
        "thresholds": thresholds.as_dict(),
    }
    rows = list(history_rows)
    if rows:
        data["history"] = [sample_summary(s) for s in rows]
    return data
