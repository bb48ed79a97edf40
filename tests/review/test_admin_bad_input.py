"""Bad input on the staff admin (every registered ModelAdmin, today's custom pages: support
looks, margins): unknown, non-numeric and too-large ids, bad list filters and orderings, NUL
bytes, huge strings, empty and wrong forms. Staff get 200/302/400/403/404/405, never a 500.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse as _reverse

from tenants.models import User
from tests.conftest import PASSWORD, Cast
from tests.review.probe import HUGE, HUGE_ID, NUL, Probe

PUBLIC_URLCONF = "penguinmails.urls_public"


def reverse(name: str, args: list[Any] | None = None) -> str:
    return _reverse(name, urlconf=PUBLIC_URLCONF, args=args)


OK = {200, 302, 400, 403, 404, 405}


@pytest.fixture
def staff_client(cast: Cast) -> Client:
    staff = User.objects.create_superuser("staff-r1@penguinmails.example.com", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    return client


def test_every_model_admin_answers_bad_ids_and_list_params_without_a_500(
    staff_client: Client,
) -> None:
    probe = Probe()
    for model in admin.site._registry:
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        for query in ("q=" + NUL, "q=" + "x" * 5000, "o=abc", "o=99", "p=abc", "p=-3",
                      "bogus=1", "id__gt=abc", "all=" + NUL):  # fmt: skip
            probe.check(staff_client, "GET", f"{changelist}?{query}", OK, who=meta.label)
        probe.check(
            staff_client, "POST", changelist, OK, who=meta.label,
            data={"action": "nope", "_selected_action": ["abc", str(HUGE_ID)]},
        )  # fmt: skip
        for bad in ("abc", str(HUGE_ID), "-1", "%00"):
            for view in ("change", "delete", "history"):
                url = reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[bad])
                probe.check(staff_client, "GET", url, OK, who=meta.label)
        add = reverse(f"admin:{meta.app_label}_{meta.model_name}_add")
        probe.check(staff_client, "POST", add, OK, data={"name": NUL}, who=meta.label)
    assert probe.failures == [], "\n".join(probe.failures)


def test_support_look_and_margins_refuse_bad_input(cast: Cast, staff_client: Client) -> None:
    probe = Probe()
    tenant = cast.tenant.pk
    for bad in ("abc", str(HUGE_ID), "-1", "999999"):
        url = reverse("admin:tenants_tenant_support", args=[bad])
        probe.check(staff_client, "GET", url, {404}, who="staff")
        probe.check(staff_client, "POST", url, {404}, data={"reason": "x" * 20}, who="staff")
    url = reverse("admin:tenants_tenant_support", args=[tenant])
    forms: list[dict[str, Any]] = [
        {},
        {"reason": NUL * 20, "panels": ["campaigns"]},
        {"reason": HUGE, "panels": ["campaigns"]},
        {"reason": "too short"},
        {"reason": "a long enough reason", "panels": ["nope", NUL]},
    ]
    for form in forms:
        probe.check(staff_client, "POST", url, {400}, data=form, who="staff")
    assert probe.failures == [], "\n".join(probe.failures)


def test_margins_page_and_command_refuse_out_of_range_months(staff_client: Client) -> None:
    probe = Probe()
    margins = reverse("admin:billing_margins")
    for month in ("abc", NUL, "2026-13", "0000-01", "9999-12", "-1", HUGE[:5000], "2026-1-1"):
        probe.check(staff_client, "GET", f"{margins}?month={month}", {200, 400}, who="staff")
    for month in ("0000-01", "9999-12"):
        with pytest.raises(CommandError):
            call_command("billing", "margins", "--month", month, stdout=StringIO())
    assert probe.failures == [], "\n".join(probe.failures)
