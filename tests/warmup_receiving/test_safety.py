"""Issue 13 items 3, 4 and 9: ordinary mail (a forged tag included) in junk is stored as usual and
never touched; cleanup deletes only tagged messages older than WARMUP_CLEANUP_DAYS; a poller or a
receive job killed and run again acts once; the sandbox files a share of warm-up mail in junk by
the sender's pool age."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from penguinmails.sandbox import junk
from tests.warmup_receiving.conftest import (
    RECEIVER,
    Pool,
    jobs,
    ordinary,
    run_jobs,
    tagged,
)
from warmup import receiving
from warmup.services import receiving as service

pytestmark = pytest.mark.django_db(transaction=True)


def _forged(pool: Pool) -> bytes:
    real, _ = tagged(pool.ann, RECEIVER)
    local, _, domain = real.partition("@")
    member, nonce, _sig = local.split(".")
    return ordinary(RECEIVER, message_id=f"<{member}.{nonce}.{'a' * 16}@{domain}>")


def test_ordinary_and_forged_mail_in_junk_is_stored_and_untouched(pool: Pool) -> None:
    pool.append(RECEIVER, ordinary(RECEIVER), "Junk")
    pool.append(RECEIVER, _forged(pool), "Junk")
    warm_id, warm = tagged(pool.ann, RECEIVER)
    pool.append(RECEIVER, warm, "Junk")
    before = pool.folder(RECEIVER, "Junk")
    report = pool.bob.poll()
    assert (report.fetched, report.stored) == (3, 2)  # the forged tag is ordinary mail
    assert run_jobs(service.RECEIVE_TASK) == 1
    after = pool.folder(RECEIVER, "Junk")
    # The two ordinary messages: same UIDs, same (empty) flags, still in junk.
    assert [(u, f) for u, f, _ in after] == [(u, f) for u, f, _ in before[:2]]
    assert all(flags == set() for _, flags, _ in after)
    (inbox,) = pool.folder(RECEIVER, "INBOX")
    assert warm_id in inbox[2].decode()
    assert pool.bob.inbound_count() == 2


def test_cleanup_deletes_only_tagged_mail_older_than_the_setting(pool: Pool, settings) -> None:  # type: ignore[no-untyped-def]
    settings.WARMUP_CLEANUP_DAYS = 7
    old = timezone.now() - timedelta(days=10)
    recent = timezone.now() - timedelta(days=2)
    old_id, old_warm = tagged(pool.ann, RECEIVER, subject="old warm")
    recent_id, recent_warm = tagged(pool.ann, RECEIVER, subject="recent warm")
    _, junk_warm = tagged(pool.ann, RECEIVER, subject="old warm in junk")
    pool.append(RECEIVER, old_warm, "INBOX", when=old)
    pool.append(RECEIVER, recent_warm, "INBOX", when=recent)
    pool.append(RECEIVER, ordinary(RECEIVER, subject="old ordinary"), "INBOX", when=old)
    pool.append(RECEIVER, _forged(pool), "INBOX", when=old)
    pool.append(RECEIVER, junk_warm, "Junk", when=old)
    pool.bob.poll()  # the poller's cursor names the junk folder
    assert receiving.enqueue_cleanups() == 2  # one job per pool mailbox
    assert run_jobs(service.CLEANUP_TASK, pool.bob.tenant) == 1
    left = b"".join(head for _, _, head in pool.folder(RECEIVER, "INBOX")).decode()
    assert old_id not in left and recent_id in left
    assert "old ordinary" in left and left.count("Message-ID") == 3
    assert pool.folder(RECEIVER, "Junk") == []  # the old tagged one there went too
    with schema_context(pool.bob.tenant.schema_name):
        assert receiving.cleanup(pool.bob.tenant, pool.bob.mailbox.pk) == 0  # nothing left to do


def test_a_killed_poller_or_job_acts_once(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    warm_id, warm = tagged(pool.ann, RECEIVER, subject="Plans")
    pool.append(RECEIVER, warm, "Junk")
    from deliverability.services import inbound_store

    def killed(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt("worker killed")

    # Killed after the chunk's commit: the job exists once, the message is not read again.
    with monkeypatch.context() as patch:
        patch.setattr(inbound_store, "process_pending", killed)
        with pytest.raises(KeyboardInterrupt):
            pool.bob.poll()
    assert pool.bob.poll().fetched == 0
    assert len(jobs(service.RECEIVE_TASK)) == 1

    # The job killed right after the move: run again, it finds the message in INBOX.
    real_move = receiving._move_to_inbox

    def move_then_die(*args, **kwargs):  # type: ignore[no-untyped-def]
        real_move(*args, **kwargs)
        raise KeyboardInterrupt("worker killed")

    (job,) = jobs(service.RECEIVE_TASK)
    payload = job.payload
    with monkeypatch.context() as patch:
        patch.setattr(receiving, "_move_to_inbox", move_then_die)
        with pytest.raises(KeyboardInterrupt), schema_context(pool.bob.tenant.schema_name):
            receiving.receive(pool.bob.tenant, pool.bob.mailbox.pk, **_args(payload))
    with schema_context(pool.bob.tenant.schema_name):
        again = receiving.receive(pool.bob.tenant, pool.bob.mailbox.pk, **_args(payload))
        twice = receiving.receive(pool.bob.tenant, pool.bob.mailbox.pk, **_args(payload))
    assert again.found == "INBOX" and twice.found == "INBOX"
    # The moved copy seen by the next poll: another job, acting on nothing new.
    assert pool.bob.poll().stored == 0
    run_jobs(service.RECEIVE_TASK)
    assert pool.folder(RECEIVER, "Junk") == []
    assert len(pool.folder(RECEIVER, "INBOX")) == 1
    assert len(pool.bob.messages(kind="reply")) == 1
    placements = jobs(service.PLACEMENT_TASK)
    assert {j.payload["placement"] for j in placements} <= {"spam", "inbox"}
    assert len([j for j in placements if j.payload["placement"] == "spam"]) == 1
    assert warm_id in pool.folder(RECEIVER, "INBOX")[0][2].decode()


def _args(payload: dict) -> dict:  # type: ignore[type-arg]
    return {
        "folder": payload["folder"],
        "uidvalidity": payload["uidvalidity"],
        "uid": payload["uid"],
        "message_id": payload["message_id"],
    }


def test_the_sandbox_files_a_share_of_young_senders_mail_in_junk(pool: Pool, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_WARMUP_JUNK_FIRST = 40
    settings.SANDBOX_WARMUP_JUNK_LAST = 5
    settings.SANDBOX_WARMUP_JUNK_DAYS = 30
    assert junk.junk_percent(1) == 40 and junk.junk_percent(30) == 5
    assert 5 < junk.junk_percent(15) < 40 and junk.junk_percent(90) == 5
    now = timezone.now()
    young = [junk.folder_for(tagged(pool.ann, RECEIVER)[1], now=now) for _ in range(300)]
    older = [
        junk.folder_for(tagged(pool.ann, RECEIVER)[1], now=now + timedelta(days=40))
        for _ in range(300)
    ]
    assert 0.30 < young.count(junk.JUNK) / 300 < 0.50
    assert older.count(junk.JUNK) / 300 < 0.12
    assert junk.folder_for(ordinary(RECEIVER)) == junk.INBOX
    assert junk.folder_for(_forged(pool)) == junk.INBOX
    raw = tagged(pool.ann, RECEIVER)[1]
    assert len({junk.folder_for(raw, now=now) for _ in range(5)}) == 1  # the same answer
