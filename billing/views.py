"""Billing page: the workspace's plan, its limits with usage (and what to remove when over them),
the plan ladder; with Stripe configured its subscription, invoices, "Subscribe/Change plan"
(Checkout, or a prorated change) and "Manage payment method and invoices" (the Customer Portal);
without Stripe the owner's or admin's free choice of plan. Every write calls a billing service."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.entitlements import plan_for
from billing.models import BillingInterval, Payment, Plan
from billing.services.dunning import summary_for
from billing.services.plans import choose_plan, over_limits, self_serve_available, usage_for
from billing.services.stripe_billing import (
    live_subscription,
    next_invoice,
    portal_url,
    start_checkout,
)
from billing.services.stripe_client import configured, user_facing
from penguinmails.errors import Conflict, ValidationFailed
from tenants.models import Tenant
from tenants.permissions import Area, Level
from tenants.services.access import Principal
from tenants.web import area_required, principal_of


def _public_plans() -> list[Plan]:
    return list(Plan.objects.filter(is_public=True).order_by("sort_order", "pk"))


class ChoosePlanForm(forms.Form):
    plan = forms.ChoiceField(label="Plan", choices=(), widget=forms.RadioSelect)

    def __init__(self, *args: object, plans: list[Plan], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["plan"].choices = [  # type: ignore[attr-defined]
            (p.slug, f"{p.name} (${p.monthly_price} a month)") for p in plans
        ]


class CheckoutForm(ChoosePlanForm):
    interval = forms.ChoiceField(
        label="Billed", choices=BillingInterval.choices, initial=BillingInterval.MONTH
    )


def dunning_context(tenant: Tenant) -> dict[str, object]:
    """The ladder's stage, its steps and the invoice to pay (billing page)."""
    summary = summary_for(tenant)
    return {
        "dunning": summary.dunning,
        "dunning_steps": summary.steps,
        "overdue": summary.overdue,
        "grace_days": settings.BILLING_GRACE_DAYS,
        "suspend_days": settings.BILLING_SUSPEND_DAYS,
    }


def _context(
    principal: Principal,
    form: ChoosePlanForm | None = None,
    checkout_form: CheckoutForm | None = None,
) -> dict[str, object]:
    tenant = principal.tenant
    plan = plan_for(tenant)
    plans = _public_plans()
    stripe_on = configured()
    subscription = live_subscription(tenant) if stripe_on else None
    return {
        "plan": plan,
        "limits": plan.parsed_limits,
        "usage": usage_for(tenant),
        "over": over_limits(tenant),
        "ladder": [(p, p.parsed_limits) for p in plans],
        "can_choose": principal.allows(Area.BILLING, Level.WRITE),
        "self_serve": self_serve_available(),
        "stripe": stripe_on,
        "subscription": subscription,
        "next_invoice": next_invoice(subscription) if subscription else None,
        "payments": Payment.objects.filter(tenant=tenant)[:24],
        **dunning_context(tenant),
        "form": form or ChoosePlanForm(plans=plans, initial={"plan": plan.slug}),
        "checkout_form": checkout_form or CheckoutForm(plans=plans, initial={"plan": plan.slug}),
    }


@area_required(Area.BILLING)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/index.html", _context(principal_of(request)))


@require_POST
@area_required(Area.BILLING, level=Level.WRITE)
def choose(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = ChoosePlanForm(request.POST, plans=_public_plans())
    status = 400
    if form.is_valid():
        try:
            assignment = choose_plan(principal, plan=form.cleaned_data["plan"])
        except ValidationFailed as exc:
            for error in (exc.fields or {}).get("plan", [exc.message]):
                form.add_error("plan", error)
        except Conflict as exc:  # over the new plan's members, or plans are paid through Stripe
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Your workspace is now on the {assignment.plan.name} plan.")
            return redirect("billing:index")
    return render(request, "billing/index.html", _context(principal, form), status=status)


@require_POST
@area_required(Area.BILLING, level=Level.WRITE)
def checkout(request: HttpRequest) -> HttpResponse:
    """Subscribe through Stripe Checkout, or change the live subscription's plan (prorated)."""
    principal = principal_of(request)
    form = CheckoutForm(request.POST, plans=_public_plans())
    status = 400
    if form.is_valid():
        try:
            with user_facing():
                result = start_checkout(
                    principal,
                    plan=form.cleaned_data["plan"],
                    interval=form.cleaned_data["interval"],
                )
        except ValidationFailed as exc:
            for name, errors in (exc.fields or {"plan": [exc.message]}).items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
        except Conflict as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            if result.url:
                return redirect(result.url)
            messages.success(request, "Your plan was changed; the difference is prorated.")
            return redirect("billing:index")
    context = _context(principal, checkout_form=form)
    return render(request, "billing/index.html", context, status=status)


@require_POST
@area_required(Area.BILLING, level=Level.WRITE)
def portal(request: HttpRequest) -> HttpResponse:
    """The Stripe Customer Portal: cards, invoices, cancellation."""
    with user_facing():
        return redirect(portal_url(principal_of(request)))
