"""Issue 13 item 3, end to end against Dovecot and the sandbox SMTP server: a warm-up message
filed in junk is rescued to the inbox and counted as spam placement on the sender's row in its
own tenant; the reply threads and lands in the sender's mailbox, where it sets replied_at; warm-up
mail never becomes an InboundMessage or shows in the unified inbox."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import InboundMessage
from tests.conftest import client_for
from tests.warmup_receiving.conftest import RECEIVER, SENDER, Pool, jobs, run_jobs, schedule_message
from warmup import tag
from warmup.models import Placement, WarmupMessageKind, WarmupMessageStatus
from warmup.services import receiving as service
from warmup.services import sender

pytestmark = pytest.mark.django_db(transaction=True)


def _all_junk(settings) -> None:  # type: ignore[no-untyped-def]
    # The sandbox files every warm-up message in junk, whatever the sender's pool age.
    settings.SANDBOX_WARMUP_JUNK_FIRST = 100
    settings.SANDBOX_WARMUP_JUNK_LAST = 100


def test_it_rescues_from_junk_counts_spam_and_the_reply_threads_back(pool: Pool, settings) -> None:  # type: ignore[no-untyped-def]
    _all_junk(settings)
    settings.WARMUP_IMPORTANT_PERCENT = 100
    original_id = schedule_message(pool.ann, pool.bob, subject="Quick question")
    with schema_context(pool.ann.tenant.schema_name):
        assert sender.send_due(pool.ann.tenant).sent == 1
    assert pool.folder(RECEIVER, "INBOX") == []
    (junked,) = pool.folder(RECEIVER, "Junk")
    assert "\\Seen" not in junked[1]

    # The receiver's poll takes it (never stored) and leaves one job in the receiver's tenant.
    report = pool.bob.poll()
    assert (report.fetched, report.stored) == (1, 0)
    assert pool.bob.inbound_count() == 0
    (job,) = jobs(service.RECEIVE_TASK)
    assert job.tenant_id == pool.bob.tenant.pk and job.payload["message_id"] == original_id
    assert run_jobs(service.RECEIVE_TASK) == 1

    # In the inbox, read and flagged; junk empty.
    assert pool.folder(RECEIVER, "Junk") == []
    (rescued,) = pool.folder(RECEIVER, "INBOX")
    assert {"\\Seen", "\\Flagged"} <= rescued[1]
    assert original_id in rescued[2].decode()

    # Spam placement recorded in the sender's tenant, by a job of the sender's tenant.
    (placement,) = jobs(service.PLACEMENT_TASK)
    assert placement.tenant_id == pool.ann.tenant.pk
    assert placement.payload == {
        "message_id": original_id,
        "placement": "spam",
        "by_member": pool.bob.member.pk,
        "at": placement.payload["at"],
    }
    assert run_jobs(service.PLACEMENT_TASK) == 1
    (sent,) = pool.ann.messages(message_id=original_id)
    assert sent.placement == Placement.SPAM and sent.placed_at is not None

    # The reply (reply rate 100 %) is a scheduled WarmupMessage of the receiver's tenant.
    (reply,) = pool.bob.messages(kind=WarmupMessageKind.REPLY)
    assert reply.in_reply_to == original_id and reply.subject == "Re: Quick question"
    assert reply.to_member_id == pool.ann.member.pk and reply.to_address == SENDER
    assert tag.parse(reply.message_id).member_id == pool.bob.member.pk  # type: ignore[union-attr]
    assert reply.scheduled_at > timezone.now()
    with schema_context(pool.bob.tenant.schema_name):
        later = timezone.now() + timedelta(hours=2)
        assert sender.send_due(pool.bob.tenant, now=later).sent == 1

    # It lands in the sender's mailbox (junk, here), in the thread.
    (arrived,) = pool.folder(SENDER, "Junk")
    head = message_from_bytes(arrived[2])
    assert head["Subject"] == "Re: Quick question"
    assert head["In-Reply-To"] == f"<{original_id}>"
    assert f"<{original_id}>" in head["References"]
    assert head["Message-ID"] == f"<{reply.message_id}>"

    # The sender's poll: not stored, rescued, replied_at set; the reply's placement goes back
    # to the receiver's tenant; nothing in the sender's unified inbox.
    assert pool.ann.poll().stored == 0
    assert run_jobs(service.RECEIVE_TASK, pool.ann.tenant) == 1
    (sent,) = pool.ann.messages(message_id=original_id)
    assert sent.replied_at is not None
    assert pool.ann.messages(kind=WarmupMessageKind.REPLY) == []  # a reply is not answered
    assert run_jobs(service.PLACEMENT_TASK, pool.bob.tenant) == 1
    (reply,) = pool.bob.messages(kind=WarmupMessageKind.REPLY)
    assert reply.status == WarmupMessageStatus.SENT and reply.placement == Placement.SPAM
    assert pool.ann.inbound_count() == 0
    api = client_for(pool.cast.owner, pool.ann.tenant, api=True)
    listed = api.get("/api/v1/inbox")
    assert listed.status_code == 200 and listed.json()["count"] == 0


def test_it_answers_a_message_in_the_inbox_once_and_counts_inbox(pool: Pool, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_WARMUP_JUNK_FIRST = 0
    settings.SANDBOX_WARMUP_JUNK_LAST = 0
    settings.WARMUP_IMPORTANT_PERCENT = 0
    original_id = schedule_message(pool.ann, pool.bob)
    with schema_context(pool.ann.tenant.schema_name):
        assert sender.send_due(pool.ann.tenant).sent == 1
    assert pool.bob.poll().stored == 0
    assert run_jobs(service.RECEIVE_TASK) == 1
    (seen,) = pool.folder(RECEIVER, "INBOX")
    assert seen[1] == {"\\Seen"}  # read, not flagged (0 % important)
    assert run_jobs(service.PLACEMENT_TASK) == 1
    (sent,) = pool.ann.messages(message_id=original_id)
    assert sent.placement == Placement.INBOX
    assert len(pool.bob.messages(kind=WarmupMessageKind.REPLY)) == 1


def test_a_paused_plan_or_a_zero_reply_rate_does_not_answer(pool: Pool, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_WARMUP_JUNK_FIRST = 0
    settings.SANDBOX_WARMUP_JUNK_LAST = 0
    with schema_context(pool.bob.tenant.schema_name):
        pool.bob.mailbox.warmup_plan.reply_rate = 0
        pool.bob.mailbox.warmup_plan.save(update_fields=["reply_rate"])
    schedule_message(pool.ann, pool.bob)
    with schema_context(pool.ann.tenant.schema_name):
        assert sender.send_due(pool.ann.tenant).sent == 1
    pool.bob.poll()
    assert run_jobs(service.RECEIVE_TASK) == 1
    assert pool.bob.messages(kind=WarmupMessageKind.REPLY) == []
    with schema_context(pool.bob.tenant.schema_name):
        assert InboundMessage.objects.count() == 0
