"""Billing page: the workspace's plan, its limits with usage, and the plan ladder.

Payment (Stripe) comes in a later issue; the page says so instead of showing invoices.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.entitlements import plan_for
from billing.models import Plan
from billing.services.plans import usage_for
from penguinmails.web import area_required, principal_of
from tenants.permissions import Area


@area_required(Area.BILLING)
def index(request: HttpRequest) -> HttpResponse:
    tenant = principal_of(request).tenant
    plan = plan_for(tenant)
    ladder = [(p, p.parsed_limits) for p in Plan.objects.filter(is_public=True)]
    return render(
        request,
        "billing/index.html",
        {
            "plan": plan,
            "limits": plan.parsed_limits,
            "usage": usage_for(tenant),
            "ladder": ladder,
        },
    )
