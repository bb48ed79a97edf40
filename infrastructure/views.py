"""Infrastructure page: the tenant's servers and IPs with live provisioning progress and cost, and
"Provision" for those with infrastructure:write (every write calls a service)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.entitlements import LimitReached, plan_for
from infrastructure.models import VPS_STEPS, VpsStatus
from infrastructure.services.mailservers import uses_shared_servers
from infrastructure.services.overview import overview
from infrastructure.services.provisioning import provision_for
from tenants.permissions import Area, Level
from tenants.services.access import Principal
from tenants.web import area_required, principal_of


def _context(principal: Principal) -> dict[str, object]:
    view = overview(principal.tenant)
    return {
        "view": view,
        "servers": view.servers,
        "ips": view.ips,
        "mail_servers": view.mail_servers,
        "steps": [VpsStatus(s).label for s in VPS_STEPS],
        "step_count": len(VPS_STEPS),
        "monthly_cost": view.monthly_cost_cents / 100,
        "can_write": principal.allows(Area.INFRASTRUCTURE, Level.WRITE),
        # A plan without dedicated servers has nothing to provision: the page says so instead.
        "shared_plan": uses_shared_servers(principal.tenant),
        "plan": plan_for(principal.tenant),
        "can_choose_plan": principal.allows(Area.BILLING, Level.WRITE),
        # Poll while any server is still being provisioned (or terminated); stop once settled.
        "polling": view.in_progress,
    }


@area_required(Area.INFRASTRUCTURE)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "infrastructure/index.html", _context(principal_of(request)))


@area_required(Area.INFRASTRUCTURE)
def progress(request: HttpRequest) -> HttpResponse:
    """The servers and IPs panel alone, for htmx polling while provisioning runs."""
    return render(request, "infrastructure/_panel.html", _context(principal_of(request)))


@require_POST
@area_required(Area.INFRASTRUCTURE, level=Level.WRITE)
def provision(request: HttpRequest) -> HttpResponse:
    try:
        servers = provision_for(principal_of(request))
    except LimitReached as exc:
        # The plan sends from shared servers: say so on the page rather than a 402 page.
        messages.error(request, exc.message)
        return redirect("infrastructure:index")
    messages.success(
        request, f"Provisioning {len(servers)} server(s): progress shows below as each step runs."
    )
    return redirect("infrastructure:index")
