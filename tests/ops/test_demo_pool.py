"""Issue 13 item 9: under `make run` the demo mailboxes warm up with a few sandbox pool
mailboxes on other sandbox domains, in a workspace of their own, with Dovecot logins so the
poller reads what the demo sends them; today's pairing already uses them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.demo_pool import POOL_SLUG, pool_addresses
from deliverability.models import Mailbox, MailboxStatus
from penguinmails.models import MailboxPoll, WarmupPoolMember
from penguinmails.sandbox.imap import SandboxImap
from tenants.models import Tenant
from tests.conftest import Cast
from tests.ops.test_demo import offline, run_demo  # noqa: F401 - the fixture
from warmup.models import WarmupMessage, WarmupPlan, WarmupStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_warms_up_with_sandbox_pool_mailboxes(
    cast: Cast,
    offline: None,  # noqa: F811 - the fixture
) -> None:
    output = run_demo()
    demo = Tenant.objects.get(slug="demo")
    pool = Tenant.objects.get(slug=POOL_SLUG)
    with schema_context(pool.schema_name):
        boxes = list(Mailbox.objects.order_by("address"))
        plans = {p.mailbox_id: p.status for p in WarmupPlan.objects.all()}
    assert [b.address for b in boxes] == sorted(pool_addresses())
    assert {b.address.rpartition("@")[2] for b in boxes} == {"pool-north.test", "pool-south.test"}
    assert all(b.status == MailboxStatus.ACTIVE for b in boxes)
    assert set(plans.values()) == {WarmupStatus.WARMING}  # hosted: in the pool by themselves
    # Their Dovecot logins, and the poller reads them.
    assert {(b.imap_host, b.imap_port, b.imap_username) for b in boxes} == {
        (settings.SANDBOX_IMAP_HOST, settings.SANDBOX_IMAP_PORT, b.address) for b in boxes
    }
    dovecot = SandboxImap(
        settings.SANDBOX_IMAP_DIR, settings.SANDBOX_IMAP_HOST, settings.SANDBOX_IMAP_PORT
    )
    assert set(pool_addresses()) <= set(dovecot.users())
    polled = set(MailboxPoll.objects.filter(tenant=pool).values_list("mailbox_id", flat=True))
    assert polled == {b.pk for b in boxes}
    # The pool's public index holds both workspaces' mailboxes, active.
    members = WarmupPoolMember.objects.filter(active=True)
    pool_ids = {m.pk for m in members if m.tenant_id == pool.pk}
    demo_ids = {m.pk for m in members if m.tenant_id == demo.pk}
    assert len(pool_ids) == 3 and len(demo_ids) == 2
    # Today's pairing uses them: the demo's warm-up goes to the pool mailboxes (never to its
    # own domain), and theirs comes back to the demo's.
    today = timezone.now().date()
    with schema_context(demo.schema_name):
        sent_to = set(
            WarmupMessage.objects.filter(scheduled_at__date=today).values_list(
                "to_member_id", flat=True
            )
        )
    with schema_context(pool.schema_name):
        answered_by = set(WarmupMessage.objects.values_list("to_member_id", flat=True))
    assert sent_to and sent_to <= pool_ids
    assert answered_by & demo_ids
    assert "Warm-up pool:" in output and "pool members paired for today" in output
    # The deliverability overview shows scores from the start (not only after the nightly job).
    from reputation.models import ReputationScore  # noqa: PLC0415

    with schema_context(demo.schema_name):
        kinds = set(ReputationScore.objects.filter(day=today).values_list("kind", flat=True))
    assert {"mailbox", "domain"} <= kinds
    assert "Reputation:" in output
    # Seeding again changes nothing.
    run_demo()
    assert Tenant.objects.filter(slug=POOL_SLUG).count() == 1
    with schema_context(pool.schema_name):
        assert Mailbox.objects.count() == 3
