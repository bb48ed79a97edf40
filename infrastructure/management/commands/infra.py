"""`manage.py infra`: provision, status, IP quarantine/migrate, deprovision (staff/ops paths).

    infra provision SLUG [--wait]      servers the plan includes; --wait runs the steps here,
                                       printing each state change (no worker needed)
    infra status [SLUG] [--json]       progress per VPS and IP
    infra ip quarantine IP --reason TEXT
    infra ip migrate --from IP --to IP
    infra deprovision SLUG [--wait]
    infra shared add|list|retire       the platform's shared mail servers (_infra_shared.py)
    infra postfix show|bind            which IP each sender leaves from (_infra_postfix.py)
    infra resources [SLUG] [--json]    CPU, memory and disk against the plan's thresholds
                                       (_infra_resources.py)
Bad arguments and refused operations exit non-zero with the reason.
"""

from __future__ import annotations

import json
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from infrastructure.management.commands import _infra_postfix, _infra_resources, _infra_shared
from infrastructure.models import VpsInstance, VpsStatus
from infrastructure.services import overview as reads
from infrastructure.services.ips import find_ip, migrate_ip, quarantine_ip
from infrastructure.services.provisioning import (
    deprovision_infrastructure,
    provision_infrastructure,
)
from penguinmails.errors import DomainError, NotFound
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from tenants.models import Tenant
from tenants.services.tenancy import real_tenants

_READY = [JobStatus.QUEUED, JobStatus.ENQUEUED, JobStatus.RETRYING]


def _tenant(slug: str) -> Tenant:
    tenant = real_tenants().filter(slug=(slug or "").strip().lower()).first()
    if tenant is None:
        raise NotFound(f"No tenant with slug '{slug}'.")
    return tenant


class Command(BaseCommand):
    help = (
        "Servers, IPs and mail servers: provision, status, IP quarantine/migrate, deprovision, "
        "shared mail servers."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        prov = sub.add_parser("provision", help="Provision the servers a tenant's plan includes.")
        prov.add_argument("tenant", metavar="SLUG")
        prov.add_argument("--wait", action="store_true", help="Run the steps here, with progress.")
        status = sub.add_parser("status", help="Progress per VPS and IP.")
        status.add_argument("tenant", metavar="SLUG", nargs="?")
        status.add_argument("--json", action="store_true", help="One JSON document on stdout.")
        dep = sub.add_parser("deprovision", help="Terminate a tenant's servers, release IPs.")
        dep.add_argument("tenant", metavar="SLUG")
        dep.add_argument("--wait", action="store_true", help="Run the steps here, with progress.")
        ip = sub.add_parser("ip", help="IP address operations.")
        ip_sub = ip.add_subparsers(dest="ip_command", required=True, metavar="IP_COMMAND")
        quarantine = ip_sub.add_parser("quarantine", help="Take an IP out of sending.")
        quarantine.add_argument("address", metavar="IP")
        quarantine.add_argument("--reason", required=True)
        migrate = ip_sub.add_parser("migrate", help="Move sending from one IP onto a clean one.")
        migrate.add_argument("--from", dest="from_ip", required=True, metavar="IP")
        migrate.add_argument("--to", dest="to_ip", required=True, metavar="IP")
        _infra_shared.add_arguments(sub)
        _infra_postfix.add_arguments(sub)
        _infra_resources.add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "provision": self.provision,
            "status": self.status,
            "deprovision": self.deprovision,
            "ip": self.ip,
            "shared": lambda opts: _infra_shared.handle(opts, self.stdout),
            "postfix": lambda opts: _infra_postfix.handle(opts, self.stdout),
            "resources": lambda opts: _infra_resources.handle(opts, self.stdout),
        }
        try:
            handlers[options["subcommand"]](options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def provision(self, options: dict[str, Any]) -> None:
        tenant = _tenant(options["tenant"])
        servers = provision_infrastructure(tenant, actor=None)
        for vps in servers:
            self.stdout.write(f"{vps.name}: {vps.status} ({vps.size}, {vps.hostname})")
        if options["wait"]:
            self._follow(servers)

    def deprovision(self, options: dict[str, Any]) -> None:
        tenant = _tenant(options["tenant"])
        servers = deprovision_infrastructure(tenant, actor=None)
        for vps in servers:
            self.stdout.write(f"{vps.name}: {vps.status}")
        if options["wait"]:
            self._follow(servers)

    def _follow(self, servers: list[VpsInstance]) -> None:
        """Run these servers' step jobs in this process, printing each state change."""
        ids = [v.pk for v in servers]
        seen = {v.pk: v.status for v in servers}
        while True:
            job = (
                Job.objects.filter(status__in=_READY, payload__vps_id__in=ids)
                .order_by("run_at", "id")
                .first()
            )
            if job is None:
                break
            wait = (job.run_at - timezone.now()).total_seconds()
            if wait > 0:
                time.sleep(min(wait, 30))
            runner.run(job.pk, worker_id="infra-command")
            for vps in VpsInstance.objects.filter(pk__in=ids):
                if seen[vps.pk] != vps.status:
                    seen[vps.pk] = vps.status
                    note = f" ({vps.last_error})" if vps.status == VpsStatus.FAILED else ""
                    self.stdout.write(f"{vps.name}: {vps.status}{note}")
        failed = [v.name for v in VpsInstance.objects.filter(pk__in=ids, status=VpsStatus.FAILED)]
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}.")

    def status(self, options: dict[str, Any]) -> None:
        tenants = [_tenant(options["tenant"])] if options["tenant"] else list(real_tenants())
        data = {t.slug: reads.as_dict(reads.overview(t)) for t in tenants}
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, default=str))
            return
        for slug, view in data.items():
            if not view["servers"] and options["tenant"] is None:
                continue
            cost = view["monthly_cost_cents"] / 100
            self.stdout.write(f"{slug}: {len(view['servers'])} server(s), ${cost:,.2f}/month")
            for v in view["servers"]:
                step = f" step {v['step']}/{v['steps']}" if v["in_progress"] else ""
                error = f" error: {v['last_error']}" if v["last_error"] else ""
                self.stdout.write(
                    f"  {v['name']} {v['hostname']} {v['status']}{step} ip={v['main_ip']}{error}"
                )
            for ip in view["ips"]:
                ptr = ip["ptr_hostname"] if ip["ptr_set"] else "no PTR"
                self.stdout.write(
                    f"  ip {ip['address'] or '(awaiting order)'} {ip['status']} {ip['role']} "
                    f"{ptr} on {ip['vps']}"
                )

    def ip(self, options: dict[str, Any]) -> None:
        if options["ip_command"] == "quarantine":
            ip = quarantine_ip(find_ip(options["address"]), reason=options["reason"], actor=None)
            self.stdout.write(f"{ip.address}: quarantined ({ip.quarantine_reason})")
        else:
            target = migrate_ip(find_ip(options["from_ip"]), find_ip(options["to_ip"]), actor=None)
            self.stdout.write(
                f"Sending for {target.tenant.slug} moved from {options['from_ip']} to "
                f"{target.address} ({target.status})."
            )
