"""The reputation monitor (issue 13 item 5): a score per mailbox, domain and IP from warm-up
placement, bounce and complaint rates, DNS health and listings, each with its parts; kept once a
day as history; a falling score lowers the campaign allowance and says so; the command, the
daily jobs, the API and the overview page, which an outsider never sees into."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from deliverability.services.allowance import allowance_for
from infrastructure.models import IpAddress
from penguinmails.models import Job
from penguinmails.queue import runner
from penguinmails.sandbox.dns import SandboxDnsServer, stage_blocklisting
from reputation import jobs
from reputation.models import ReputationScore, ScoreKind
from reputation.services import blocklists, scores
from reputation.services.rescore import SCORE_TENANT_TASK
from tests.api.conftest import key_client
from tests.conftest import Cast, client_for
from tests.dashboard.helpers import custom_member
from tests.reputation_score.conftest import make_domain, make_ip, make_mailbox, place, sends
from warmup.services import pool


def _parts(row: ReputationScore) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in row.parts}


def _setup(cast: Cast) -> dict[str, int]:
    """anna: 60 % inbox, 3 % bounces, DMARC broken (score 65); ben: clean (100)."""
    with schema_context(cast.tenant.schema_name):
        make_domain("scored.test", broken=("dmarc",))
        anna = make_mailbox("anna@scored.test")
        ben = make_mailbox("ben@clean.test")
        make_domain("clean.test")
        place(anna, inbox=6, spam=4)
        place(anna, inbox=0, spam=30, days_ago=9)  # outside the 7 days: not counted
        sends(anna, sent=97, bounced=3)
        sends(ben, sent=50)
        return {"anna": anna.pk, "ben": ben.pk}


def test_each_mailbox_domain_and_ip_gets_a_score_with_its_parts(cast: Cast) -> None:
    ids = _setup(cast)
    ip = make_ip(cast.tenant, "127.0.0.61")
    scores.score_tenant(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        rows = {(r.kind, r.subject): r for r in ReputationScore.objects.all()}
    anna = rows[(ScoreKind.MAILBOX, "anna@scored.test")]
    assert anna.subject_id == ids["anna"] and anna.day == timezone.now().date()
    parts = _parts(anna)
    assert (parts["placement"]["value"], parts["placement"]["points"]) == (0.6, 24)
    assert parts["placement"]["why"].startswith("60 % of 10 placed warm-up messages")
    assert (parts["bounces"]["value"], parts["bounces"]["points"]) == (0.03, 8)
    assert parts["complaints"]["points"] == 20
    assert (parts["dns"]["points"], parts["dns"]["why"]) == (13, "DMARC do not verify")
    assert anna.score == 24 + 8 + 20 + 13
    assert rows[(ScoreKind.MAILBOX, "ben@clean.test")].score == 100
    assert rows[(ScoreKind.DOMAIN, "scored.test")].score == 65  # its one mailbox's figures
    assert rows[(ScoreKind.DOMAIN, "clean.test")].score == 100
    # The IP: no mail yet, no PTR; its score is fed to infrastructure's IP row.
    ip_row = rows[(ScoreKind.IP, "127.0.0.61")]
    assert (ip_row.subject_id, ip_row.score) == (ip.pk, 80)
    assert _parts(ip_row)["ptr"]["why"] == "no PTR record for the IP"
    assert IpAddress.objects.get(pk=ip.pk).reputation_score == 80
    # Nothing of acme is scored in globex.
    with schema_context(cast.other_tenant.schema_name):
        assert not ReputationScore.objects.exists()


def test_scores_are_kept_once_a_day_as_history(cast: Cast) -> None:
    ids = _setup(cast)
    today = timezone.now().date()
    scores.score_tenant(cast.tenant, day=today - timedelta(days=1))
    scores.score_tenant(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        place(Mailbox.objects.get(pk=ids["anna"]), inbox=0, spam=10)
    scores.score_tenant(cast.tenant)  # recomputed in place
    with schema_context(cast.tenant.schema_name):
        days = scores.history(ScoreKind.MAILBOX, ids["anna"])
        assert [d.day for d in days] == [today - timedelta(days=1), today]
        assert days[-1].score < days[0].score  # the recomputation moved today's row


def test_a_listed_domain_costs_its_mailboxes_and_shows_on_the_domains_page(
    cast: Cast, dnsbl: SandboxDnsServer, django_capture_on_commit_callbacks: Any
) -> None:
    with schema_context(cast.tenant.schema_name):
        make_domain("listed.test")
        make_mailbox("carl@listed.test")
    stage_blocklisting(dnsbl.store, "listed.test", zone="dbl.spamhaus.org")
    Job.objects.filter(task=SCORE_TENANT_TASK).delete()
    with django_capture_on_commit_callbacks(execute=True):
        blocklists.check_domains(cast.tenant, only_due=False)
    connection.set_schema_to_public()
    # The new listing asks for the tenant's scores now, not at night.
    assert Job.objects.filter(task=SCORE_TENANT_TASK, tenant=cast.tenant).count() == 1
    scores.score_tenant(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        carl = ReputationScore.objects.get(kind=ScoreKind.MAILBOX, subject="carl@listed.test")
    assert carl.score == 40
    assert _parts(carl)["blocklists"] == {
        "name": "blocklists", "value": 100, "weight": 60, "points": -60,
        "why": "listed: listed.test on Spamhaus DBL",
    }  # fmt: skip
    page = client_for(cast.owner, cast.tenant).get("/domains/")
    assert page.status_code == 200
    assert b"listed.test is listed on Spamhaus DBL (dbl.spamhaus.org) since" in page.content
    theirs = client_for(cast.outsider, cast.other_tenant).get("/domains/")
    assert theirs.status_code == 200 and b"listed.test" not in theirs.content


def test_a_low_score_lowers_the_campaign_allowance_and_says_so(cast: Cast) -> None:
    ids = _setup(cast)
    with schema_context(cast.tenant.schema_name):
        before = allowance_for(cast.tenant, [ids["anna"]]).mailboxes[ids["anna"]]
        assert (before.left, before.explanation) == (40, "40 of 40 today")
    scores.score_tenant(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        room = allowance_for(cast.tenant, [ids["anna"], ids["ben"]])
        anna, ben = room.mailboxes[ids["anna"]], room.mailboxes[ids["ben"]]
        assert anna.left == 24  # 65 -> x0.6 of 40
        assert anna.explanation == "24 of 40 today: reputation 65: allowance x0.6"
        assert ben.left == 40 and ben.explanation == "40 of 40 today"
        # With warm-up holding it too, both say why; warm-up's own sends are not cut.
        mailbox = Mailbox.objects.get(pk=ids["anna"])
        pool.opt_in(mailbox, started_on=timezone.localdate() - timedelta(days=5))
        held = allowance_for(cast.tenant, [ids["anna"]]).mailboxes[ids["anna"]]
        assert held.explanation.endswith("day 6 of warm-up, 40 % of warm-up mail in spam; "
                                         "reputation 65: allowance x0.6")  # fmt: skip
        assert held.left < 24
    # The API shows the same explanation.
    api = key_client(cast.tenant, creator=cast.owner).client
    body = api.get(f"/api/v1/mailboxes/{ids['anna']}").json()
    assert body["allowance_explanation"] == held.explanation


def test_a_stale_score_no_longer_cuts(cast: Cast) -> None:
    ids = _setup(cast)
    scores.score_tenant(cast.tenant, day=timezone.now().date() - timedelta(days=5))
    with schema_context(cast.tenant.schema_name):
        assert allowance_for(cast.tenant, [ids["anna"]]).left(ids["anna"]) == 40


def test_the_command_scores_now_and_refuses_an_unknown_tenant(cast: Cast) -> None:
    _setup(cast)
    out = StringIO()
    call_command("reputation", "score", "--tenant", "acme", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "acme: 4 scores"
    anna = next(line for line in lines if "anna@scored.test" in line)
    assert anna.split("\t")[:3] == ["  mailbox", "anna@scored.test", "65"]
    assert "placement 24/40" in anna and "dns 13/20" in anna
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        call_command("reputation", "score", "--tenant", "nope", stdout=StringIO())


@pytest.mark.django_db(transaction=True)  # the worker's runner closes the connection
def test_the_daily_job_scores_every_active_tenant(cast: Cast) -> None:
    _setup(cast)
    connection.set_schema_to_public()
    Job.objects.filter(task__startswith="reputation.score").delete()
    jobs.scores_due({}, None)  # type: ignore[arg-type]
    queued = list(Job.objects.filter(task=SCORE_TENANT_TASK).order_by("id"))
    assert {j.tenant_id for j in queued} >= {cast.tenant.pk, cast.other_tenant.pk}
    for job in queued:
        runner.run(job.pk, worker_id="test")
    connection.set_schema_to_public()
    with schema_context(cast.tenant.schema_name):
        assert ReputationScore.objects.filter(subject="anna@scored.test").count() == 1


def test_the_api_lists_scores_worst_first_and_nothing_of_another_tenant(cast: Cast) -> None:
    _setup(cast)
    scores.score_tenant(cast.tenant)
    scores.score_tenant(cast.other_tenant)
    owner = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/reputation")
    assert owner.status_code == 200
    body = owner.json()
    assert [m["subject"] for m in body["mailboxes"]] == ["anna@scored.test", "ben@clean.test"]
    assert body["mailboxes"][0]["score"] == 65 and body["mailboxes"][0]["allowance_share"] == 0.6
    assert {p["name"] for p in body["mailboxes"][0]["parts"]} >= {"placement", "dns"}
    assert [d["subject"] for d in body["domains"]] == ["scored.test", "clean.test"]
    viewer = client_for(cast.viewer, cast.tenant, api=True).get("/api/v1/reputation")
    assert viewer.status_code == 200 and len(viewer.json()["mailboxes"]) == 2
    theirs = client_for(cast.outsider, cast.other_tenant, api=True).get("/api/v1/reputation")
    assert theirs.status_code == 200 and theirs.json()["mailboxes"] == []
    assert client_for(cast.outsider, cast.tenant, api=True).get(
        "/api/v1/reputation"
    ).status_code in (401, 403, 404)
    # Without the Warm-up area: refused; with it but not Mailboxes: no mailboxes.
    blind, _ = custom_member(cast.tenant, "blind@acme.test", mailboxes="read")
    assert client_for(blind, cast.tenant, api=True).get("/api/v1/reputation").status_code == 403
    warm, _ = custom_member(cast.tenant, "warm@acme.test", warmup="read")
    only = client_for(warm, cast.tenant, api=True).get("/api/v1/reputation").json()
    assert only["mailboxes"] == [] and only["domains"] == []


def test_the_overview_page_is_worst_first_and_in_the_nav(cast: Cast) -> None:
    _setup(cast)
    make_ip(cast.tenant, "127.0.0.62")
    scores.score_tenant(cast.tenant)
    page = client_for(cast.owner, cast.tenant).get("/reputation/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("anna@scored.test") < html.index("ben@clean.test")
    assert 'href="/reputation/"' in html and "x0.6" in html
    assert "DMARC do not verify" in html
    theirs = client_for(cast.outsider, cast.other_tenant).get("/reputation/")
    assert theirs.status_code == 200 and "anna@scored.test" not in theirs.content.decode()
    assert client_for(cast.outsider, cast.tenant).get("/reputation/").status_code in (302, 403, 404)
    blind, _ = custom_member(cast.tenant, "blind2@acme.test", mailboxes="read")
    assert client_for(blind, cast.tenant).get("/reputation/").status_code == 403
    # Each section follows its area: IPs need Infrastructure.
    assert 'data-subject="127.0.0.62"' in html
    no_infra, _ = custom_member(cast.tenant, "noinfra@acme.test", warmup="read", mailboxes="read")
    partial = client_for(no_infra, cast.tenant).get("/reputation/").content.decode()
    assert "anna@scored.test" in partial and "127.0.0.62" not in partial
    assert 'id="overview-domains"' not in partial
