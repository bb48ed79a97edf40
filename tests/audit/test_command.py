"""`manage.py audit list`: one tenant's log for ops, refusals that say why."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.models import AuditSource
from tenants.services.audit import record
from tests.conftest import Cast


def run(*args: str) -> str:
    out = StringIO()
    call_command("audit", *args, stdout=out)
    return out.getvalue()


def test_it_lists_one_tenants_events_newest_first(cast: Cast) -> None:
    record("campaign.start", tenant=cast.tenant, actor=cast.member, campaign="Spring")
    record("support.look", tenant=cast.tenant, actor=cast.owner, source=AuditSource.SUPPORT)
    record("campaign.start", tenant=cast.other_tenant, actor=cast.outsider, campaign="Q3")
    rows = json.loads(run("list", "acme", "--json"))
    assert [r["action"] for r in rows][:2] == ["support.look", "campaign.start"]
    assert all(r["detail"].get("campaign") != "Q3" for r in rows)
    text = run("list", "acme", "--source", "support")
    assert "[Platform staff (support access)] support.look" in text
    assert "campaign.start" not in text
    limited = json.loads(run("list", "acme", "--action", "campaign.", "--limit", "1", "--json"))
    assert [r["actor"] for r in limited] == ["member@acme.test"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "nope"], "No tenant 'nope'"),
        (["list", "acme", "--limit", "0"], "--limit must be at least 1"),
        (["list", "acme", "--since", "monday"], "'monday' is not a day"),
        (["list", "acme", "--source", "hacker"], "invalid choice"),
        (["list", "acme", "--since", "2030-01-02", "--until", "2030-01-01"], "--until comes"),
    ],
)
def test_it_refuses_saying_why(cast: Cast, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
