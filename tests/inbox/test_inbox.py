"""Issue 12 item 6, the unified inbox: replies read by the poller from the real Dovecot, threaded
with the campaign message they answer, on the page and in the API; filters, unread counts,
labels and suggestions; an answer sent through the sandbox SMTP server in the prospect's
thread; a viewer reads but cannot answer; the outsider sees nothing."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import InboxReply
from campaigns.services.inbox import suggest_label
from deliverability.models import InboundMessage
from penguinmails.sandbox.imap import SandboxImap
from tests.conftest import Cast, client_for
from tests.inbound_poll.conftest import World, reply, sent_world
from tests.sending.conftest import Sandbox

pytestmark = pytest.mark.django_db(transaction=True)


def _world(cast: Cast, sandbox: Sandbox, imap: SandboxImap) -> tuple[World, int, int]:
    world = sent_world(cast, sandbox, imap)
    first, second = world.messages
    world.deliver(reply(first, body="Sounds good, let's meet Tuesday.\n\n> Hello"))
    world.deliver(
        reply(
            second,
            body="I am out of the office until 12 January with limited access to email.",
            Auto_Submitted="auto-replied",
        )
    )
    assert world.poll().processed == 2
    with schema_context(cast.tenant.schema_name):
        ids = dict(InboundMessage.objects.values_list("matched_message_id", "pk"))
    return world, ids[first.pk], ids[second.pk]


def test_it_lists_replies_threaded_with_what_we_sent(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world, human, auto = _world(cast, sandbox, imap)
    first = world.messages[0]
    page = client_for(cast.owner, cast.tenant).get("/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="inbox-{human}"' in html and f'id="inbox-{auto}"' in html
    assert world.campaign.name in html and "2 unread" in html
    assert "Inbox (2)" in html  # the sidebar's unread count
    api = client_for(cast.owner, cast.tenant, api=True)
    rows = api.get("/api/v1/inbox/").json()["results"]
    assert [r["id"] for r in rows] == sorted([human, auto], reverse=True)
    one = api.get(f"/api/v1/inbox/{human}/").json()
    assert one["message"]["id"] == first.pk
    assert one["message"]["campaign"] == world.campaign.pk
    assert one["message"]["subject"] == first.subject
    assert one["from_address"] == first.to_email
    assert one["suggested_label"] == "meeting_booked"
    assert "let's meet" in one["body"]
    auto_row = api.get(f"/api/v1/inbox/{auto}/").json()
    assert auto_row["kind"] == "auto_reply" and auto_row["suggested_label"] == "out_of_office"
    thread = client_for(cast.owner, cast.tenant).get(f"/inbox/{human}/")
    assert thread.status_code == 200 and first.subject in thread.content.decode()


def test_it_filters_labels_and_counts_unread(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world, human, auto = _world(cast, sandbox, imap)
    api = client_for(cast.owner, cast.tenant, api=True)

    def ids(query: str) -> list[int]:
        return sorted(r["id"] for r in api.get(f"/api/v1/inbox/?{query}").json()["results"])

    assert ids(f"campaign={world.campaign.pk}") == sorted([human, auto])
    assert ids(f"campaign={world.campaign.pk + 999}") == []
    assert ids(f"mailbox={world.mailbox.pk}") == sorted([human, auto])
    assert ids("unread=true") == sorted([human, auto])
    assert api.post(f"/api/v1/inbox/{human}/read/", {"read": True}, format="json").json()["read"]
    assert ids("unread=true") == [auto]
    assert ids("unread=false") == [human]
    labelled = api.post(
        f"/api/v1/inbox/{human}/label/", {"label": "interested"}, format="json"
    ).json()
    assert labelled["label"] == "interested"
    assert ids("label=interested") == [human]
    assert (
        api.post(f"/api/v1/inbox/{human}/label/", {"label": "bogus"}, format="json").status_code
        == 400
    )
    page = client_for(cast.owner, cast.tenant).get("/inbox/?unread=1")
    assert (
        "1 unread" in page.content.decode() and f'id="inbox-{human}"' not in page.content.decode()
    )
    client_for(cast.owner, cast.tenant).post(f"/inbox/{auto}/label/", {"label": "wrong_person"})
    assert ids("label=wrong_person") == [auto]


def test_it_suggests_labels_from_obvious_text() -> None:
    assert suggest_label("reply", "Not interested, thanks.") == "not_interested"
    assert suggest_label("reply", "Please unsubscribe me") == "not_interested"
    assert suggest_label("reply", "Happy to book a call next week") == "meeting_booked"
    assert suggest_label("auto_reply", "Back on Monday") == "out_of_office"
    assert suggest_label("reply", "Who is this?\n> I am not interested in quotes") == ""


def test_it_replies_in_the_prospects_thread_through_smtp(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world, human, _ = _world(cast, sandbox, imap)
    first = world.messages[0]
    with schema_context(cast.tenant.schema_name):
        theirs = InboundMessage.objects.get(pk=human).message_id
    before = len(sandbox.messages())
    api = client_for(cast.owner, cast.tenant, api=True)
    answer = api.post(
        f"/api/v1/inbox/{human}/reply/", {"body": "Tuesday 10:00 works."}, format="json"
    )
    assert answer.status_code == 201, answer.content
    captured = sandbox.messages()
    assert len(captured) == before + 1
    sent = next(m for m in captured if m["Message-ID"] == answer.json()["message_id"])
    assert sent["In-Reply-To"] == theirs
    assert sent["References"].split() == [first.message_id, theirs]
    assert sent["Subject"] == "Re: Hello"
    assert sent["To"] == first.to_email and world.mailbox.address in sent["From"]
    assert "Tuesday 10:00 works." in sent.get_content() if not sent.is_multipart() else True
    with schema_context(cast.tenant.schema_name):
        assert InboxReply.objects.filter(inbound_id=human).count() == 1
    detail = api.get(f"/api/v1/inbox/{human}/").json()
    assert detail["read"] and detail["replies"][0]["body"] == "Tuesday 10:00 works."
    page = client_for(cast.owner, cast.tenant).post(f"/inbox/{human}/reply/", {"body": "Also."})
    assert page.status_code == 302 and len(sandbox.messages()) == before + 2


def test_a_viewer_reads_but_cannot_reply_or_label(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    _, human, _ = _world(cast, sandbox, imap)
    api = client_for(cast.viewer, cast.tenant, api=True)
    assert api.get(f"/api/v1/inbox/{human}/").status_code == 200
    assert (
        api.post(f"/api/v1/inbox/{human}/reply/", {"body": "x"}, format="json").status_code == 403
    )
    assert (
        api.post(
            f"/api/v1/inbox/{human}/label/", {"label": "interested"}, format="json"
        ).status_code
        == 403
    )
    web = client_for(cast.viewer, cast.tenant)
    thread = web.get(f"/inbox/{human}/")
    assert thread.status_code == 200 and 'id="reply-box"' not in thread.content.decode()
    assert web.post(f"/inbox/{human}/reply/", {"body": "x"}).status_code == 403
    with schema_context(cast.tenant.schema_name):
        assert not InboxReply.objects.exists()


def test_the_outsider_sees_nothing(cast: Cast, sandbox: Sandbox, imap: SandboxImap) -> None:
    _, human, _ = _world(cast, sandbox, imap)
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/inbox/").json()["results"] == []
    assert api.get(f"/api/v1/inbox/{human}/").status_code == 404
    assert (
        api.post(f"/api/v1/inbox/{human}/reply/", {"body": "x"}, format="json").status_code == 404
    )
    web = client_for(cast.outsider, cast.other_tenant)
    page = web.get("/inbox/")
    assert page.status_code == 200 and f'id="inbox-{human}"' not in page.content.decode()
    assert web.get(f"/inbox/{human}/").status_code == 404
    assert client_for(cast.outsider, cast.tenant).get("/inbox/").status_code in (302, 403, 404)
