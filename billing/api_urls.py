"""Billing routes under /api/v1/ (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import re_path

from billing.api import CurrentPlanView, InvoiceViewSet, PlanListView, SubscriptionView

urlpatterns = [
    re_path(r"^plan/?$", CurrentPlanView.as_view(), name="plan"),
    re_path(r"^plans/?$", PlanListView.as_view(), name="plans"),
    re_path(r"^billing/subscription/?$", SubscriptionView.as_view(), name="billing-subscription"),
    re_path(
        r"^billing/invoices/?$", InvoiceViewSet.as_view({"get": "list"}), name="billing-invoices"
    ),
]
