"""Issue 12, item 1: the public poll index and its beat entry, bounded runs that re-enqueue
themselves, exactly once across a killed poller, the login back-off, and the ops command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import MessageEvent, Suppression
from deliverability.models import InboundMessage, InboundState, Mailbox, MailboxStatus
from deliverability.services import imap_reader, inbound_store
from deliverability.services import mailboxes as mailbox_svc
from penguinmails.models import Job, MailboxPoll
from penguinmails.queue import runner
from penguinmails.sandbox.imap import SandboxImap
from tests.conftest import Cast
from tests.inbound_poll.conftest import dsn, reply, sent_world, verp_of
from tests.sending.conftest import Sandbox, principal

pytestmark = pytest.mark.django_db(transaction=True)


def _poll_jobs(world) -> list[Job]:  # type: ignore[no-untyped-def]
    connection.set_schema_to_public()
    return list(
        Job.objects.filter(task=imap_reader.POLL_TASK, tenant=world.cast.tenant, status="queued")
    )


def test_the_beat_enqueues_one_job_per_due_mailbox_and_the_job_polls(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    world.deliver(reply(world.messages[0]))
    assert imap_reader.enqueue_due() == 1
    assert imap_reader.enqueue_due() == 1  # still due, but its job is live: no second one
    (job,) = _poll_jobs(world)
    assert job.payload == {"mailbox_id": world.mailbox.pk}
    runner.run(job.pk, worker_id="test")
    connection.set_schema_to_public()
    job.refresh_from_db()
    assert job.status == "completed", job.last_error
    poll = MailboxPoll.objects.get(mailbox_id=world.mailbox.pk)
    assert poll.next_poll_at > timezone.now() + timedelta(seconds=60) and poll.failures == 0
    assert imap_reader.enqueue_due() == 0  # polled: not due until the interval has passed
    with schema_context(cast.tenant.schema_name):
        assert InboundMessage.objects.get().status == InboundState.PROCESSED


def test_a_killed_poller_acts_once_per_message(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = sent_world(cast, sandbox, imap, leads=3)
    for message in world.messages:
        world.deliver(dsn(verp_of(world, message), message.to_email, message.message_id))
    # One per run: the run stores one message, acts on it and enqueues its own continuation.
    first = world.poll(batch=1)
    assert (first.stored, first.processed, first.more) == (1, 1, True)
    assert len(_poll_jobs(world)) == 1
    # Killed after storing, before acting: the stored message waits in `received`.
    real = inbound_store.process_pending

    def killed(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(inbound_store, "process_pending", killed)
    with pytest.raises(KeyboardInterrupt):
        world.poll(batch=1)
    monkeypatch.setattr(inbound_store, "process_pending", real)
    with schema_context(cast.tenant.schema_name):
        assert InboundMessage.objects.filter(status=InboundState.RECEIVED).count() == 1
    # The re-run (the enqueued job) acts on the stored one and reads the rest.
    for job in _poll_jobs(world):
        runner.run(job.pk, worker_id="test")
    while _poll_jobs(world):
        for job in _poll_jobs(world):
            runner.run(job.pk, worker_id="test")
    world.poll()
    with schema_context(cast.tenant.schema_name):
        assert InboundMessage.objects.count() == 3
        assert set(InboundMessage.objects.values_list("status", flat=True)) == {"processed"}
        assert MessageEvent.objects.filter(kind="bounce").count() == 3
        assert Suppression.objects.count() == 3
        for message in world.messages:
            assert MessageEvent.objects.filter(message_id=message.pk).count() == 1
    # Acting again on processed rows does nothing.
    with schema_context(cast.tenant.schema_name):
        pks = list(InboundMessage.objects.values_list("pk", flat=True))
        assert not any(inbound_store.process_one(cast.tenant, pk) for pk in pks)


def test_a_failing_login_flags_the_mailbox_and_backs_off(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    with schema_context(cast.tenant.schema_name):
        mailbox = Mailbox.objects.get(pk=world.mailbox.pk)
        mailbox.imap_password = "wrong-password"
        mailbox.save(update_fields=["imap_password"])
    report = world.poll()
    assert report.failed.startswith("IMAP auth failed: ")
    with schema_context(cast.tenant.schema_name):
        mailbox = Mailbox.objects.get(pk=world.mailbox.pk)
        assert mailbox.status == MailboxStatus.FAILING
        assert mailbox.last_error_step == "auth" and mailbox.last_error.startswith("IMAP: ")
        assert mailbox.status_reason == report.failed
    connection.set_schema_to_public()
    first = MailboxPoll.objects.get(mailbox_id=world.mailbox.pk)
    assert first.failures == 1
    assert imap_reader.enqueue_due() == 0  # not retried hot
    world.poll()  # an operator's poll now: the wait doubles
    connection.set_schema_to_public()
    second = MailboxPoll.objects.get(mailbox_id=world.mailbox.pk)
    assert second.failures == 2
    assert second.next_poll_at - timezone.now() > (first.next_poll_at - timezone.now()) * 1.5
    for _ in range(20):
        world.poll()
    connection.set_schema_to_public()
    capped = MailboxPoll.objects.get(mailbox_id=world.mailbox.pk)
    assert capped.next_poll_at <= timezone.now() + timedelta(hours=6, seconds=5)


def test_the_index_follows_the_mailbox(cast: Cast, sandbox: Sandbox, imap: SandboxImap) -> None:
    world = sent_world(cast, sandbox, imap)
    p = principal(cast)
    with schema_context(cast.tenant.schema_name):
        mailbox = Mailbox.objects.get(pk=world.mailbox.pk)
        mailbox_svc.pause_mailbox(p, mailbox, reason="holiday")
        assert MailboxPoll.objects.filter(mailbox_id=mailbox.pk).exists()  # replies still read
        mailbox_svc.delete_mailbox(p, mailbox)
        assert not MailboxPoll.objects.filter(mailbox_id=mailbox.pk).exists()


def test_the_ops_command_polls_now(cast: Cast, sandbox: Sandbox, imap: SandboxImap) -> None:
    world = sent_world(cast, sandbox, imap)
    world.deliver(reply(world.messages[0]))
    out = StringIO()
    call_command(
        "inbound",
        "poll",
        "--tenant",
        cast.tenant.slug,
        "--mailbox",
        world.mailbox.address,
        stdout=out,
    )
    assert '"processed": 1' in out.getvalue()


def test_a_message_that_fails_leaves_the_others_of_its_chunk_acted_on_once(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    """A chunk is acted on without a savepoint per message: when one message raises, the chunk
    is rolled back and acted on again one at a time. The others are acted on exactly once
    (rollups and events counted once), the bad one stays `received` with a failed attempt."""
    from campaigns.models import CampaignDailyStat
    from deliverability.signals import inbound_classified

    world = sent_world(cast, sandbox, imap, leads=4)
    for message in world.messages:
        world.deliver(dsn(verp_of(world, message), message.to_email, message.message_id))
    poison = world.messages[2].to_email

    def explode(sender: object, *, classification: object, **_: object) -> None:
        recipients = getattr(classification, "recipients", [])
        if any(r.address == poison for r in recipients):
            raise RuntimeError("a receiver's bug on this one message")

    inbound_classified.connect(explode, dispatch_uid="tests.poison")
    try:
        world.poll()
    finally:
        inbound_classified.disconnect(dispatch_uid="tests.poison")
    with schema_context(cast.tenant.schema_name):
        states = sorted(InboundMessage.objects.values_list("status", flat=True))
        assert states == ["processed", "processed", "processed", "received"]
        bad = InboundMessage.objects.get(status=InboundState.RECEIVED)
        assert bad.attempts == 1
        assert MessageEvent.objects.filter(kind="bounce").count() == 3
        assert Suppression.objects.count() == 3
        assert not Suppression.objects.filter(value=poison.lower()).exists()
        assert sum(CampaignDailyStat.objects.values_list("bounced", flat=True)) == 3
