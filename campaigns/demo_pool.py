"""The demo's warm-up partners (issue 13 item 9, docs/sandbox.md "The demo"): under `make run`
the demo mailboxes warm up with a few sandbox pool mailboxes on other sandbox domains, in a
workspace of their own ("Sandbox warm-up pool"), since the pool never pairs a mailbox with its
own domain and prefers other tenants.

The pool workspace is made like any other: the demo owner owns it (it shows in the workspace
switcher; nothing of a real tenant is in it), on the entry plan, so its mailboxes go on the
shared sandbox mail server; its domains are added and verified against the sandbox DNS server;
its mailboxes are created, provisioned and, being hosted, join the pool by themselves; each gets
its login on the sandbox Dovecot, so the inbound poller reads the demo's warm-up mail there
(rescue from junk, replies, placement reports). Then today's pairing is run at once (the beat
pairs tomorrow's at noon UTC) so warm-up starts without waiting a day. Every step is skipped
when already done.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.demo import _drive_jobs, _sandbox_dns
from deliverability.dns.sandbox import LOOPBACK, all_tenants_sending_ips, publish_platform_names
from deliverability.models import Mailbox, SendingDomain
from deliverability.services.domains import add_domain
from deliverability.services.mailboxes import attach_sandbox_imap, create_mailbox
from penguinmails.models import CLAIMABLE_STATUSES, Job
from penguinmails.providers import DnsProviderName
from penguinmails.queue import runner
from penguinmails.sandbox.dns import ZoneStore
from penguinmails.sandbox.imap import SandboxImap
from reputation.services.scores import score_tenant
from tenants.db import TenantConnection
from tenants.models import Tenant, User
from tenants.services.access import active_membership, principal_for_membership
from tenants.services.tenancy import create_tenant
from warmup.services import plans as warmup_plans

POOL_SLUG = "warmpool"
POOL_NAME = "Sandbox warm-up pool"
# (local part, domain, display name): two domains, as the entry plan allows.
POOL_MAILBOXES = (
    ("nina", "pool-north.test", "Nina Berg"),
    ("omar", "pool-north.test", "Omar Haddad"),
    ("pia", "pool-south.test", "Pia Lund"),
)


def pool_addresses() -> list[str]:
    return [f"{local}@{domain}" for local, domain, _ in POOL_MAILBOXES]


def _pool_tenant(owner: User) -> Tenant:
    tenant = Tenant.objects.filter(slug=POOL_SLUG).first()
    return tenant or create_tenant(name=POOL_NAME, slug=POOL_SLUG, owner=owner)


def _seed_mailboxes(tenant: Tenant, owner: User, *, say: Callable[[str], None]) -> None:
    membership = active_membership(owner, tenant)
    if membership is None:
        raise RuntimeError("the demo owner is not an active member of the sandbox pool workspace")
    principal = principal_for_membership(membership)
    with schema_context(tenant.schema_name):
        for name in sorted({domain for _, domain, _ in POOL_MAILBOXES}):
            if not SendingDomain.objects.filter(name=name).exists():
                add_domain(principal, name=name)
    _drive_jobs(tenant, say=say)
    with schema_context(tenant.schema_name):
        for local, domain, display_name in POOL_MAILBOXES:
            if not Mailbox.objects.filter(address=f"{local}@{domain}").exists():
                create_mailbox(
                    principal, local_part=local, domain=domain, display_name=display_name
                )
    _drive_jobs(tenant, say=say)


def _attach_dovecot(tenant: Tenant) -> None:
    """Each pool mailbox's login on the sandbox Dovecot (a user already there keeps its
    password), and the poller told to read it."""
    imap = SandboxImap(
        settings.SANDBOX_IMAP_DIR, settings.SANDBOX_IMAP_HOST, settings.SANDBOX_IMAP_PORT
    )
    known = imap.users()
    missing = {a: secrets.token_urlsafe(18) for a in pool_addresses() if a not in known}
    if missing:
        imap.add_users(missing)
    logins = {**known, **missing}
    with schema_context(tenant.schema_name):
        for mailbox in Mailbox.objects.filter(address__in=pool_addresses()):
            if mailbox.imap_host and mailbox.imap_username == mailbox.address:
                continue
            attach_sandbox_imap(
                mailbox, host=settings.SANDBOX_IMAP_HOST, port=settings.SANDBOX_IMAP_PORT,
                password=logins[mailbox.address],
            )  # fmt: skip


def _republish_platform_names() -> None:
    """Publishing a domain of a workspace without IPs of its own (the pool's, on the shared
    sandbox server) sets the platform's SPF include to loopback alone, dropping the demo's IPs:
    publish it again with every workspace's sending IPs and loopback (the shared sandbox)."""
    if settings.DNS_PROVIDER != DnsProviderName.LOCAL:
        return
    ips = [*all_tenants_sending_ips(), LOOPBACK]
    publish_platform_names(ZoneStore(settings.SANDBOX_DNS_ZONES), sending_ips=ips)


def plan_today() -> int:
    """Pair the pool for today and run each tenant's plan job now (the beat pairs tomorrow's at
    noon UTC); a mailbox that already has today's messages is skipped by the job."""
    paired = warmup_plans.plan_day(timezone.now().date())
    for job in Job.objects.filter(
        task=warmup_plans.PLAN_TENANT_TASK, status__in=CLAIMABLE_STATUSES
    ).order_by("id"):
        runner.run(job.pk, worker_id="demo-seed")
        cast(TenantConnection, connection).set_schema_to_public()
    return paired


def seed_warmup_pool(demo: Tenant, owner: User, *, say: Callable[[str], None]) -> None:
    """The sandbox pool workspace, its mailboxes in the pool and on Dovecot, and today's
    warm-up plan for the demo and the pool."""
    tenant = _pool_tenant(owner)
    with _sandbox_dns():
        _seed_mailboxes(tenant, owner, say=say)
    _republish_platform_names()
    _attach_dovecot(tenant)
    paired = plan_today()
    with schema_context(tenant.schema_name):
        boxes = ", ".join(f"{m.address} ({m.status})" for m in Mailbox.objects.order_by("address"))
    say(f"Warm-up pool:   {boxes}; {paired} pool members paired for today")


def seed_demo_pool(
    sender: object, *, tenant: Tenant, owner: User, say: Callable[[str], None], **_: object
) -> None:
    """Receiver of tenants.signals.demo_workspace_ready, after campaigns.demo.seed_demo
    (connected by CampaignsConfig.ready). Then today's reputation scores, so the deliverability
    overview has something to show before the nightly job runs."""
    seed_warmup_pool(tenant, owner, say=say)
    scored = score_tenant(tenant)
    say(f"Reputation: {len(scored)} mailbox, domain and IP score(s) computed for today")
