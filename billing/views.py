"""Billing page: the workspace's plan, its limits with usage, the plan ladder, and (until Stripe
checkout exists, and only without a payment provider configured) the owner's or admin's choice of
plan. Every write calls billing.services.plans."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.entitlements import plan_for
from billing.models import Plan
from billing.services.plans import choose_plan, self_serve_available, usage_for
from penguinmails.errors import Conflict, ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal
from tenants.web import area_required, principal_of


class ChoosePlanForm(forms.Form):
    plan = forms.ChoiceField(label="Plan", choices=(), widget=forms.RadioSelect)

    def __init__(self, *args: object, plans: list[Plan], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["plan"].choices = [  # type: ignore[attr-defined]
            (p.slug, f"{p.name} (${p.monthly_price} a month)") for p in plans
        ]


def _context(principal: Principal, form: ChoosePlanForm | None = None) -> dict[str, object]:
    tenant = principal.tenant
    plan = plan_for(tenant)
    plans = list(Plan.objects.filter(is_public=True).order_by("sort_order", "pk"))
    return {
        "plan": plan,
        "limits": plan.parsed_limits,
        "usage": usage_for(tenant),
        "ladder": [(p, p.parsed_limits) for p in plans],
        "can_choose": principal.allows(Area.BILLING, Level.WRITE),
        "self_serve": self_serve_available(),
        "form": form or ChoosePlanForm(plans=plans, initial={"plan": plan.slug}),
    }


@area_required(Area.BILLING)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/index.html", _context(principal_of(request)))


@require_POST
@area_required(Area.BILLING, level=Level.WRITE)
def choose(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = ChoosePlanForm(
        request.POST, plans=list(Plan.objects.filter(is_public=True).order_by("sort_order", "pk"))
    )
    status = 400
    if form.is_valid():
        try:
            assignment = choose_plan(principal, plan=form.cleaned_data["plan"])
        except ValidationFailed as exc:
            for error in (exc.fields or {}).get("plan", [exc.message]):
                form.add_error("plan", error)
        except Conflict as exc:  # over the new plan's members, or checkout not available yet
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Your workspace is now on the {assignment.plan.name} plan.")
            return redirect("billing:index")
    return render(request, "billing/index.html", _context(principal, form), status=status)
