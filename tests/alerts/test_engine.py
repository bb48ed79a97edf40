"""The alert engine through its public interface: raise, refresh, resolve, acknowledge, rules that
fire and clear, and the staff channels (email, a Slack-compatible webhook on a local server)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from pytest_httpserver import HTTPServer

from penguinmails.alerts import (
    Alert,
    AlertState,
    Finding,
    Severity,
    acknowledge_alert,
    evaluate_rules,
    open_alerts_for_tenant,
    raise_alert,
    register_rule,
    resolve_alert,
)
from penguinmails.errors import IllegalTransition, NotFound
from penguinmails.models import Job
from penguinmails.queue import runner
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

# A rule the tests steer: the subjects it finds now; and one that fails when told to.
STEERED: set[str] = set()
BROKEN: list[bool] = []


@register_rule("test.steered")
def steered(now: datetime) -> Iterable[Finding]:
    return [Finding(s, f"{s} is bad", Severity.CRITICAL, {"at": now.isoformat()}) for s in STEERED]


@register_rule("test.broken")
def broken(now: datetime) -> Iterable[Finding]:
    if BROKEN:
        raise RuntimeError("this rule is broken")
    return []


@pytest.fixture(autouse=True)
def _reset(settings: Any) -> Iterable[None]:
    STEERED.clear()
    BROKEN[:] = [True]
    settings.ALERTS_WEBHOOK_URL = ""
    yield
    STEERED.clear()
    BROKEN.clear()


def test_it_opens_one_alert_and_refreshes_it_while_open(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    cast.owner.is_staff = True
    cast.owner.save()
    with django_capture_on_commit_callbacks(execute=True):
        first = raise_alert("blocklist.listed", "ip:203.0.113.7", summary="Listed on one list")
    with django_capture_on_commit_callbacks(execute=True):
        again = raise_alert(
            "blocklist.listed", "ip:203.0.113.7", summary="Listed on two lists", detail={"n": 2}
        )
    assert again.pk == first.pk
    row = Alert.objects.get(pk=first.pk)
    assert (row.state, row.summary, row.detail) == (
        AlertState.FIRING,
        "Listed on two lists",
        {"n": 2},
    )
    assert row.last_seen_at >= row.opened_at
    # Told once, on open only.
    assert [m.to for m in mail.outbox] == [[cast.owner.email]]
    assert "blocklist.listed" in mail.outbox[0].subject
    assert "Listed on one list" in mail.outbox[0].body


def test_the_database_refuses_a_second_open_alert_for_the_same_subject(cast: Cast) -> None:
    raise_alert("r.one", "s", summary="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(rule="r.one", subject="s", summary="y")


def test_it_resolves_and_a_new_occurrence_opens_a_new_alert(cast: Cast) -> None:
    first = raise_alert("r.two", "s", summary="x")
    assert resolve_alert("r.two", "s", note="delisted") is True
    assert resolve_alert("r.two", "s") is False  # nothing open any more
    row = Alert.objects.get(pk=first.pk)
    assert row.state == AlertState.RESOLVED and row.resolved_at is not None
    assert row.resolution == "delisted"
    second = raise_alert("r.two", "s", summary="x again")
    assert second.pk != first.pk


def test_acknowledge_moves_firing_to_acknowledged_once(cast: Cast) -> None:
    alert = raise_alert("r.three", "s", summary="x")
    acked = acknowledge_alert(alert.pk, actor=cast.admin)
    assert acked.state == AlertState.ACKNOWLEDGED
    assert Alert.objects.get(pk=alert.pk).acknowledged_by == cast.admin
    with pytest.raises(IllegalTransition):
        acknowledge_alert(alert.pk, actor=cast.admin)
    with pytest.raises(NotFound):
        acknowledge_alert(999999)
    # Acknowledged is still open: raising again refreshes it, resolving closes it.
    assert raise_alert("r.three", "s", summary="y").pk == alert.pk
    assert resolve_alert("r.three", "s") is True


def test_a_rule_fires_on_its_findings_and_resolves_what_it_no_longer_finds(cast: Cast) -> None:
    now = timezone.now()
    STEERED.update({"a", "b"})
    counts = evaluate_rules(now)
    assert counts["test.steered"] == 2
    assert counts["test.broken"] == -1  # logged; the others still ran
    open_ = Alert.objects.filter(rule="test.steered", state=AlertState.FIRING)
    assert sorted(open_.values_list("subject", flat=True)) == ["a", "b"]
    STEERED.discard("a")
    evaluate_rules(now + timedelta(minutes=1))
    assert Alert.objects.get(rule="test.steered", subject="a").state == AlertState.RESOLVED
    b = Alert.objects.get(rule="test.steered", subject="b")
    assert b.state == AlertState.FIRING and b.last_seen_at == now + timedelta(minutes=1)


def test_a_broken_rule_resolves_nothing(cast: Cast) -> None:
    raise_alert("test.broken", "kept", summary="opened by hand")
    evaluate_rules()
    assert Alert.objects.get(rule="test.broken", subject="kept").state == AlertState.FIRING


def test_tenant_alerts_are_shown_to_that_tenant_only(cast: Cast) -> None:
    raise_alert(
        "r.tenant", "tenant:acme", summary="Payment failed", tenant_schema=cast.tenant.schema_name
    )
    raise_alert("r.platform", "platform", summary="Platform thing")
    assert [a.summary for a in open_alerts_for_tenant(cast.tenant.schema_name)] == [
        "Payment failed"
    ]
    assert open_alerts_for_tenant(cast.other_tenant.schema_name) == []


@pytest.mark.django_db(transaction=True)  # the worker's runner recycles the connection
def test_the_webhook_gets_the_alert_text_through_the_queue(
    cast: Cast, settings: Any, httpserver: HTTPServer
) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = True
    settings.ALERTS_WEBHOOK_URL = httpserver.url_for("/hook")
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    alert = raise_alert("r.hook", "ip:203.0.113.9", summary="Listed", severity=Severity.CRITICAL)
    raise_alert("r.hook", "ip:203.0.113.9", summary="Still listed")  # no second job
    jobs = Job.objects.filter(task="alerts.webhook")
    assert [j.payload["alert_id"] for j in jobs] == [alert.pk]
    runner.run(jobs[0].pk, worker_id="test")
    ((request, _),) = httpserver.log
    text = json.loads(request.data)["text"]
    assert text == "[CRITICAL] r.hook ip:203.0.113.9: Listed"
    assert Job.objects.get(pk=jobs[0].pk).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_the_webhook_is_refused_a_loopback_url_without_the_allowance(
    cast: Cast, settings: Any, httpserver: HTTPServer
) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False
    settings.ALERTS_WEBHOOK_URL = httpserver.url_for("/hook")
    raise_alert("r.hook2", "s", summary="x")
    job = Job.objects.get(task="alerts.webhook")
    runner.run(job.pk, worker_id="test")
    job.refresh_from_db()
    assert job.status == "dead" and "refused" in job.last_error
    assert httpserver.log == []


@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_rules_every_minute_through_the_queue(cast: Cast) -> None:
    from penguinmails.schedule import BEAT_SCHEDULE
    from penguinmails.tasks import enqueue_job

    entry = BEAT_SCHEDULE["alerts-evaluate"]
    assert (entry["schedule"], entry["args"]) == (60.0, ("alerts.evaluate",))
    STEERED.add("from-beat")
    BROKEN.clear()
    job_id = enqueue_job("alerts.evaluate")
    runner.run(job_id, worker_id="test")
    assert Job.objects.get(pk=job_id).status == "completed"
    assert Alert.objects.get(rule="test.steered", subject="from-beat").state == AlertState.FIRING
