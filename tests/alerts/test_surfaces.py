"""Where people meet alerts: the admin (banner, list, acknowledge action), a tenant's dashboard
banner (its own alerts only), and `manage.py alerts list|ack`."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from penguinmails.alerts import Alert, AlertState, Severity, raise_alert, resolve_alert
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(cast: Cast) -> Client:
    cast.admin.is_staff = True
    cast.admin.is_superuser = True
    cast.admin.save()
    return client_for(cast.admin, None)


def test_the_admin_shows_open_alerts_on_every_page_and_acknowledges(
    cast: Cast, staff: Client
) -> None:
    alert = raise_alert(
        "queue.backlog", "queue", summary="More than 1000 jobs waited", severity=Severity.CRITICAL
    )
    resolved = raise_alert("r.old", "s", summary="Gone by now")
    resolve_alert("r.old", "s")
    page = staff.get("/admin/").content.decode()
    assert "1 open alert" in page and "More than 1000 jobs waited" in page
    assert "Gone by now" not in page
    listing = staff.get("/admin/alerts/alert/").content.decode()
    assert "More than 1000 jobs waited" in listing and "Gone by now" in listing
    response = staff.post(
        "/admin/alerts/alert/",
        {"action": "acknowledge", "_selected_action": [alert.pk, resolved.pk]},
        follow=True,
    )
    assert response.status_code == 200
    row = Alert.objects.get(pk=alert.pk)
    assert row.state == AlertState.ACKNOWLEDGED and row.acknowledged_by == cast.admin
    assert Alert.objects.get(pk=resolved.pk).state == AlertState.RESOLVED
    assert "1 alert(s) acknowledged." in response.content.decode()


def test_the_admin_banner_is_absent_without_open_alerts(cast: Cast, staff: Client) -> None:
    assert "open alert" not in staff.get("/admin/").content.decode()


def test_a_tenant_sees_its_own_alerts_on_its_dashboard_and_nobody_elses(cast: Cast) -> None:
    raise_alert(
        "billing.payment_failed",
        f"tenant:{cast.tenant.slug}",
        summary="Your last payment failed: update your card.",
        tenant_schema=cast.tenant.schema_name,
    )
    raise_alert("platform.bounce_rate", "platform", summary="Platform bounce rate 20 %")
    page = client_for(cast.viewer, cast.tenant).get("/").content.decode()
    assert "Your last payment failed" in page
    assert "Platform bounce rate" not in page
    other = client_for(cast.outsider, cast.other_tenant).get("/").content.decode()
    assert "Your last payment failed" not in other
    # The outsider on acme's host is not let in, and sees no banner either.
    refused = client_for(cast.outsider, cast.tenant).get("/")
    assert "Your last payment failed" not in refused.content.decode()


def test_alerts_list_shows_open_ones_and_all_with_resolved(cast: Cast) -> None:
    open_one = raise_alert("r.list", "a", summary="still bad")
    raise_alert("r.list", "b", summary="was bad")
    resolve_alert("r.list", "b")
    out = StringIO()
    call_command("alerts", "list", stdout=out)
    assert f"#{open_one.pk} firing" in out.getvalue() and "was bad" not in out.getvalue()
    out = StringIO()
    call_command("alerts", "list", "--all", "--json", stdout=out)
    rows = {r["subject"]: r for r in json.loads(out.getvalue()) if r["rule"] == "r.list"}
    assert (rows["a"]["state"], rows["b"]["state"]) == ("firing", "resolved")


def test_alerts_ack_acknowledges_and_refuses_unknown_or_twice(cast: Cast) -> None:
    alert = raise_alert("r.ack", "a", summary="x")
    out = StringIO()
    call_command("alerts", "ack", str(alert.pk), stdout=out)
    assert f"alert {alert.pk} acknowledged" in out.getvalue()
    assert Alert.objects.get(pk=alert.pk).state == AlertState.ACKNOWLEDGED
    with pytest.raises(CommandError, match="No alert 999999"):
        call_command("alerts", "ack", "999999")
    with pytest.raises(CommandError, match="cannot go from acknowledged"):
        call_command("alerts", "ack", str(alert.pk))
