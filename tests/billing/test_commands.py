from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.entitlements import plan_for
from billing.models import Plan
from tenants.models import AuditEvent
from tests.conftest import Cast


def _run(*args: str) -> str:
    out = StringIO()
    call_command("plans", *args, stdout=out)
    return out.getvalue()


def test_it_lists_plans(cast: Cast) -> None:
    text = _run("list")
    assert text.splitlines()[0].startswith("starter")
    assert "mailboxes 500" in text
    rows = json.loads(_run("list", "--json"))
    assert [r["slug"] for r in rows] == ["starter", "growth", "scale", "enterprise"]
    assert rows[1]["limits"]["dedicated_ips"] == 1
    assert rows[1]["monthly_price"] == "149.00"


def test_it_assigns_a_plan(cast: Cast) -> None:
    assert _run("assign", "acme", "scale").strip() == "acme: Starter -> Scale"
    assert plan_for(cast.tenant).slug == "scale"
    assert AuditEvent.objects.filter(tenant=cast.tenant, action="billing.plan_changed").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("assign", "nope", "growth"), "No tenant with slug 'nope'."),
        (("assign", "acme", "platinum"), "No plan 'platinum'. Known plans: starter"),
        (("assign", "acme", "starter"), "already on the Starter plan"),
        (("assign", "acme"), "the following arguments are required: PLAN"),
        (("upgrade",), "invalid choice"),
    ],
)
def test_it_exits_non_zero_on_bad_arguments(cast: Cast, args: tuple[str, ...], reason: str) -> None:
    with pytest.raises(CommandError, match=reason):
        _run(*args)
    assert plan_for(cast.tenant).slug == "starter"


def test_it_refuses_a_downgrade_below_usage_from_the_command(cast: Cast) -> None:
    Plan.objects.create(
        slug="pair",
        name="Pair",
        monthly_price=0,
        limits={**Plan.objects.get(slug="starter").limits, "members": 2},
        is_public=False,
    )
    with pytest.raises(CommandError, match="has 4 members"):
        _run("assign", "acme", "pair")
    assert plan_for(cast.tenant).slug == "starter"
