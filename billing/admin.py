"""Staff admin for plans and tenants' plans.

A tenant's plan changes only through `change_plan` (the same service as `manage.py plans
assign`); the limits document is validated by `Plan.clean`.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from billing import (
    admin_dunning,  # noqa: F401  (registers the dunning ladder)
    admin_stripe,  # noqa: F401  (registers Stripe's records)
)
from billing.models import Plan, TenantPlan
from billing.services.plans import change_plan, check_plan_change
from penguinmails.errors import DomainError
from tenants.auth import logged_in_user
from tenants.models import Tenant
from tenants.services.tenancy import real_tenants


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "monthly_price", "is_public", "sort_order", "tenant_count")
    list_editable = ("is_public", "sort_order")
    ordering = ("sort_order", "pk")
    search_fields = ("slug", "name")

    @admin.display(description="Tenants assigned")
    def tenant_count(self, obj: Plan) -> int:
        return obj.assignments.count()


class TenantPlanForm(forms.ModelForm):
    class Meta:
        model = TenantPlan
        fields = ["tenant", "plan"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "tenant" in self.fields:
            tenant_field = cast("forms.ModelChoiceField[Tenant]", self.fields["tenant"])
            tenant_field.queryset = real_tenants()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.pk else None)
        plan = cleaned.get("plan")
        if tenant is not None and plan is not None:
            try:
                check_plan_change(tenant, plan=plan)
            except DomainError as exc:
                raise forms.ValidationError(exc.message) from exc
        return cleaned

    def validate_unique(self) -> None:
        # Adding a row for a tenant that already has one is a plan change, not a duplicate:
        # change_plan updates the existing row.
        pass


@admin.register(TenantPlan)
class TenantPlanAdmin(admin.ModelAdmin):
    """Which plan each tenant is on (tenants without a row are on the entry plan)."""

    form = TenantPlanForm
    list_display = ("tenant", "plan", "since", "changed_by")
    list_filter = ("plan",)
    search_fields = ("tenant__slug", "tenant__name")
    readonly_fields = ("since", "changed_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("tenant", *self.readonly_fields) if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: TenantPlan, form: Any, change: bool) -> None:
        assignment = change_plan(obj.tenant, plan=obj.plan, actor=logged_in_user(request))
        obj.pk = assignment.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would silently move the tenant to the entry plan, unaudited.
        return False
