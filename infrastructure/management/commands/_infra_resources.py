"""`manage.py infra resources [SLUG] [--json] [--collect]`: each server's newest CPU, memory and
disk reading against its plan's thresholds (docs/infrastructure.md, "Resources").

    infra resources                  every tenant's live servers
    infra resources SLUG             one tenant's
    infra resources --json           one JSON document on stdout
    infra resources --collect        read them now (as the scheduled job does) before printing
"""

from __future__ import annotations

import json
from argparse import _SubParsersAction
from typing import Any

from django.core.management.base import OutputWrapper

from infrastructure.models import VpsInstance, VpsStatus
from infrastructure.services import overview as reads
from infrastructure.services import resources
from penguinmails.errors import NotFound
from tenants.services.tenancy import real_tenants


def add_arguments(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    res = sub.add_parser("resources", help="Servers' CPU, memory and disk against thresholds.")
    res.add_argument("tenant", metavar="SLUG", nargs="?")
    res.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    res.add_argument("--collect", action="store_true", help="Read the servers now first.")


def _servers(slug: str | None) -> list[VpsInstance]:
    servers = VpsInstance.objects.select_related("tenant").exclude(status=VpsStatus.TERMINATED)
    if slug:
        tenant = real_tenants().filter(slug=slug.strip().lower()).first()
        if tenant is None:
            raise NotFound(f"No tenant with slug '{slug}'.")
        servers = servers.filter(tenant=tenant)
    return list(servers.order_by("tenant__slug", "created_at", "id"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def handle(options: dict[str, Any], out: OutputWrapper) -> None:
    servers = _servers(options["tenant"])
    if options["collect"]:
        for vps in servers:
            resources.collect(vps.pk)
    latest = resources.latest_samples(v.pk for v in servers)
    rows = []
    for vps in servers:
        row = {"tenant": vps.tenant.slug, **reads.vps_summary(vps)}
        thresholds = resources.thresholds_for(vps.tenant)
        row["resources"] = resources.resources_summary(latest.get(vps.pk), thresholds)
        rows.append(row)
    if options["json"]:
        out.write(json.dumps({"servers": rows}, indent=2))
        return
    if not rows:
        out.write("No servers.")
        return
    for row in rows:
        data, limits = row["resources"]["latest"], row["resources"]["thresholds"]
        head = f"{row['tenant']}/{row['name']} ({row['hostname']}, {row['status']})"
        if data is None:
            out.write(f"{head}: not read yet")
            continue
        if data["error"]:
            out.write(f"{head}: last reading failed at {data['taken_at']}: {data['error']}")
            continue
        figures = "  ".join(
            f"{name} {_pct(data[f'{name}_percent'])}/{limits[name]}%"
            + (" OVER" if name in data["over"] else "")
            for name in resources.FIGURES
        )
        out.write(f"{head}: {figures}  ({data['source']}, {data['taken_at']})")
