"""Warm-up faces (issue 13 item 8): the warm-up page of a mailbox (status, day N, today's
sends, 30 days' placement chart, the score and its parts) and its settings form;
GET/PATCH /api/v1/mailboxes/{id}/warmup (400 with field errors, roles, the outsider); the pool's
admin (read-only). The Warm-up permission area decides who may see and change warm-up."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from penguinmails.models import WarmupPoolMember
from reputation.services import scores
from tenants.models import User
from tests.api.conftest import assert_error, key_client
from tests.conftest import PASSWORD, Cast, client_for
from tests.dashboard.helpers import custom_member
from tests.reputation_score.conftest import make_domain, make_mailbox, place
from warmup.models import WarmupMessage, WarmupPlan, WarmupStatus
from warmup.services import pool


def _warming(cast: Cast, address: str = "dora@faces.test", *, day: int = 6) -> Mailbox:
    """A mailbox of acme in the pool, on day `day` of its ramp, with placed warm-up mail."""
    with schema_context(cast.tenant.schema_name):
        make_domain("faces.test")
        mailbox = make_mailbox(address)
        pool.opt_in(mailbox, started_on=timezone.localdate() - timedelta(days=day - 1))
        place(mailbox, inbox=8, spam=2)
        place(mailbox, inbox=3, spam=3, days_ago=12)
        return mailbox


def test_the_page_shows_status_day_sends_placement_and_score(cast: Cast) -> None:
    mailbox = _warming(cast)
    with schema_context(cast.tenant.schema_name):
        WarmupMessage.objects.filter(mailbox=mailbox, placed_at__gte=timezone.now() - timedelta(
            hours=1)).update(sent_at=timezone.now())  # fmt: skip
    scores.score_tenant(cast.tenant, day=timezone.now().date() - timedelta(days=1))
    scores.score_tenant(cast.tenant)
    page = client_for(cast.owner, cast.tenant).get(f"/warmup/mailboxes/{mailbox.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-warmup-status="warming"' in html and "Day 6</strong>" in html
    assert "<dd data-placement-30d>11 / 5</dd>" in html
    assert "<dd data-sent-today>10</dd>" in html
    # What campaigns may send today and why (its warm-up age; its score, 92, cuts nothing).
    room = html[html.index("data-campaign-room>") :].split("</p>")[0]
    assert "Campaigns today: " in room and "day 6 of warm-up" in room
    assert "reputation" not in room
    chart = html[html.index('id="placement-chart"') :]
    chart = chart[: chart.index("</figure>")]
    assert "<svg" in chart and "<script" not in chart
    assert 'id="reputation-score"' in html and 'data-part="placement"' in html
    assert 'id="score-chart"' in html  # two days of history
    assert 'action="/warmup/mailboxes/' in html  # the owner may change it
    # The mailboxes page links to it.
    listing = client_for(cast.owner, cast.tenant).get("/mailboxes/").content.decode()
    assert f'href="/warmup/mailboxes/{mailbox.pk}/"' in listing


def test_a_mailbox_out_of_the_pool_says_so_and_can_join(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        mailbox = make_mailbox("finn@faces.test")
    url = f"/warmup/mailboxes/{mailbox.pk}/"
    owner = client_for(cast.owner, cast.tenant)
    page = owner.get(url).content.decode()
    assert 'data-warmup-status="off"' in page and 'data-score="none"' in page
    # Saving with the box unchecked keeps it out; checked, it joins.
    form = {"enabled": "false", "target": "40", "timezone": "UTC"}
    assert owner.post(f"{url}settings/", form).status_code == 302
    assert not WarmupPoolMember.objects.filter(tenant=cast.tenant, mailbox_id=mailbox.pk).exists()
    assert owner.post(f"{url}settings/", {**form, "enabled": "true"}).status_code == 302
    assert WarmupPoolMember.objects.filter(tenant=cast.tenant, mailbox_id=mailbox.pk).exists()


def test_an_outsider_and_a_role_without_warm_up_see_nothing(cast: Cast) -> None:
    mailbox = _warming(cast)
    url = f"/warmup/mailboxes/{mailbox.pk}/"
    assert client_for(cast.outsider, cast.tenant).get(url).status_code in (302, 403, 404)
    # In their own workspace the id is unknown.
    assert client_for(cast.outsider, cast.other_tenant).get(url).status_code == 404
    post = client_for(cast.outsider, cast.other_tenant).post(
        f"{url}settings/", {"enabled": "false"}
    )
    assert post.status_code == 404
    blind, _ = custom_member(cast.tenant, "blind3@acme.test", mailboxes="write")
    assert client_for(blind, cast.tenant).get(url).status_code == 403
    with schema_context(cast.tenant.schema_name):
        assert WarmupPlan.objects.get(mailbox=mailbox).status == WarmupStatus.WARMING


def test_the_viewer_reads_but_cannot_change_and_the_member_can(cast: Cast) -> None:
    mailbox = _warming(cast)
    url = f"/warmup/mailboxes/{mailbox.pk}/"
    viewer = client_for(cast.viewer, cast.tenant)
    page = viewer.get(url)
    assert page.status_code == 200 and f'action="{url}settings/"' not in page.content.decode()
    assert viewer.post(f"{url}settings/", {"target": "60"}).status_code == 403
    member = client_for(cast.member, cast.tenant)
    form = {"enabled": ["false", "true"], "target": "60", "start_volume": "3",
            "daily_increase": "2", "reply_rate": "25", "weekend_percent": "40",
            "maintenance_volume": "6", "timezone": "Europe/Paris"}  # fmt: skip
    saved = member.post(f"{url}settings/", form)
    assert saved.status_code == 302
    with schema_context(cast.tenant.schema_name):
        plan = WarmupPlan.objects.get(mailbox=mailbox)
    assert (plan.target, plan.reply_rate, plan.timezone) == (60, 25, "Europe/Paris")
    bad = member.post(f"{url}settings/", {**form, "target": "0", "timezone": "Mars/Base"})
    assert bad.status_code == 400
    assert "target: A whole number from 1 to 500." in bad.content.decode()
    # Unchecked box: out of the pool (the plan is kept, off).
    member.post(f"{url}settings/", {**form, "enabled": "false"})
    with schema_context(cast.tenant.schema_name):
        assert WarmupPlan.objects.get(mailbox=mailbox).status == WarmupStatus.OFF
    assert not WarmupPoolMember.objects.filter(tenant=cast.tenant, mailbox_id=mailbox.pk).exists()


def test_the_api_reads_the_warm_up(cast: Cast) -> None:
    mailbox = _warming(cast)
    api = key_client(cast.tenant, role="viewer", creator=cast.owner).client
    got = api.get(f"/api/v1/mailboxes/{mailbox.pk}/warmup")
    assert got.status_code == 200
    body = got.json()
    assert (body["enabled"], body["day"], body["plan"]["status"]) == (True, 6, "warming")
    assert (body["inbox_30d"], body["spam_30d"], body["spam_share_30d"]) == (11, 5, 0.3125)
    assert body["plan"]["target"] == 40 and body["volume_today"] >= 1
    assert api.get("/api/v1/mailboxes/999999/warmup").status_code == 404


def test_the_api_patch_changes_the_plan_and_refuses_bad_input(cast: Cast) -> None:
    mailbox = _warming(cast)
    url = f"/api/v1/mailboxes/{mailbox.pk}/warmup"
    admin = key_client(cast.tenant, role="admin", creator=cast.owner).client
    ok = admin.patch(url, {"target": 80, "weekend_percent": 20}, format="json")
    assert ok.status_code == 200 and ok.json()["plan"]["target"] == 80
    bad = admin.patch(url, {"target": "lots", "reply_rate": 101, "timezone": "Nowhere/Land",
                            "enabled": "maybe", "colour": "blue"}, format="json")  # fmt: skip
    error = assert_error(bad, 400)
    assert set(error["fields"]) == {"target", "reply_rate", "timezone", "enabled", "colour"}
    with schema_context(cast.tenant.schema_name):
        assert WarmupPlan.objects.get(mailbox=mailbox).reply_rate == 30  # nothing half-written
    above = admin.patch(url, {"start_volume": 90}, format="json")
    assert assert_error(above, 400)["fields"] == {"start_volume": ["At most the target (80)."]}
    off = admin.patch(url, {"enabled": False}, format="json")
    assert off.status_code == 200 and off.json()["enabled"] is False
    back = admin.patch(url, {"enabled": True}, format="json")
    assert back.json()["enabled"] is True and back.json()["day"] == 1  # the ramp restarts


def test_the_api_refuses_viewers_writes_and_the_outsider(cast: Cast) -> None:
    mailbox = _warming(cast)
    url = f"/api/v1/mailboxes/{mailbox.pk}/warmup"
    viewer = key_client(cast.tenant, role="viewer", creator=cast.owner).client
    assert_error(viewer.patch(url, {"target": 10}, format="json"), 403)
    member = client_for(cast.member, cast.tenant, api=True)
    assert member.patch(url, {"target": 10}, format="json").status_code == 200
    outsider = key_client(cast.other_tenant, role="admin", creator=cast.outsider).client
    assert outsider.get(url).status_code == 404
    assert outsider.patch(url, {"enabled": False}, format="json").status_code == 404
    wrong_host = key_client(cast.other_tenant, creator=cast.outsider, host=cast.tenant).client
    assert wrong_host.get(url).status_code in (401, 403, 404)
    with schema_context(cast.tenant.schema_name):
        plan = WarmupPlan.objects.get(mailbox=mailbox)
    assert (plan.target, plan.status) == (10, WarmupStatus.WARMING)


def test_a_connected_mailbox_joins_through_the_api(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        mailbox = make_mailbox("eve@connected.test")
    url = f"/api/v1/mailboxes/{mailbox.pk}/warmup"
    api = key_client(cast.tenant, role="admin", creator=cast.owner).client
    first = api.get(url).json()
    assert (first["enabled"], first["plan"]) == (False, None)
    not_in = api.patch(url, {"target": 30}, format="json")
    assert "enabled" in assert_error(not_in, 400)["fields"]
    joined = api.patch(url, {"enabled": True, "target": 30}, format="json")
    assert joined.status_code == 200 and joined.json()["plan"]["target"] == 30
    assert WarmupPoolMember.objects.filter(tenant=cast.tenant, mailbox_id=mailbox.pk).exists()


def test_staff_see_the_pool_read_only_in_the_admin(cast: Cast) -> None:
    _warming(cast)
    connection.set_schema_to_public()
    staff = User.objects.create_user("staff@penguinmails.test", PASSWORD, is_staff=True,
                                     is_superuser=True)  # fmt: skip
    client = client_for(staff, None)
    page = client.get("/admin/penguinmails/warmuppoolmember/?active__exact=1")
    assert page.status_code == 200 and b"dora@faces.test" in page.content
    member = WarmupPoolMember.objects.get(address="dora@faces.test")
    detail = client.get(f"/admin/penguinmails/warmuppoolmember/{member.pk}/change/")
    assert detail.status_code == 200 and b'name="address"' not in detail.content
    assert client.get("/admin/penguinmails/warmuppoolmember/add/").status_code == 403
    blocklists = client.get("/admin/reputation/blocklist/")
    assert blocklists.status_code == 200 and b'name="form-0-weight"' in blocklists.content
