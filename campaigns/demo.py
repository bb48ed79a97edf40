"""Seeding the demo workspace of `make run` with working, offline infrastructure (issue 4, item
11): a local VPS with loopback IPs, a sending domain published to and verified by the sandbox DNS
server, and mailboxes on the sandbox SMTP server.

Everything goes through the same services as the dashboard, and the jobs they enqueue are run
here, in order, by the queue's own runner, so a newcomer logs in to a workspace that already
shows it all. Each step is skipped when already done, so `make run` can call this every time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import time as dt_time
from typing import cast

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.test.utils import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.entitlements import limits_for
from billing.models import Plan
from billing.services.plans import change_plan
from campaigns.models import Campaign, EmailTemplate, LeadList
from campaigns.services import campaigns as campaign_service
from campaigns.services.leads import create_leads
from campaigns.services.templates import create_template
from deliverability.dns.sandbox import all_tenants_sending_ips, publish_platform_names
from deliverability.models import Mailbox, MailboxStatus, SendingDomain
from deliverability.services.domains import add_domain
from deliverability.services.mailboxes import attach_sandbox_imap, create_mailbox
from infrastructure.models import VpsInstance
from infrastructure.providers.local import publish_reverse_dns
from infrastructure.services.ips import reverse_dns_names
from infrastructure.services.provisioning import provision_infrastructure
from penguinmails.errors import Conflict
from penguinmails.models import CLAIMABLE_STATUSES, Job
from penguinmails.providers import DnsProviderName
from penguinmails.queue import runner
from penguinmails.sandbox.dns import ZoneRecord, ZoneStore, start_sandbox_dns
from penguinmails.sandbox.imap import SandboxImap
from penguinmails.sandbox.rules import RuleStore, make_rule
from tenants.db import TenantConnection
from tenants.models import Tenant, User
from tenants.services.access import active_membership, principal_for_membership
from warmup.services import pool as warmup_pool

DEMO_DOMAIN = "demo-agency.test"
DEMO_WARMUP_AGE_DAYS = 45  # the demo mailboxes' warm-up began this long ago
DEMO_MAILBOXES = (("alex", "Alex from Demo Agency"), ("sam", "Sam from Demo Agency"))
# The first plan of the ladder with a server of its own.
DEMO_PLAN = "growth"


def seed_demo_infrastructure(tenant: Tenant, owner: User, *, say: Callable[[str], None]) -> None:
    membership = active_membership(owner, tenant)
    if membership is None:
        raise RuntimeError("the demo owner is not an active member of the demo workspace")
    principal = principal_for_membership(membership)

    if limits_for(tenant).vps_count == 0:
        change_plan(tenant, plan=Plan.objects.get(slug=DEMO_PLAN), actor=owner)
        say(f"Demo plan:      {DEMO_PLAN}")
    if not VpsInstance.objects.filter(tenant=tenant).exists():
        provision_infrastructure(tenant, actor=owner)
        say("Provisioning a local server for the demo…")

    # The local provider answers at once: poll it every second, not every INFRA_POLL_SECONDS.
    with _sandbox_dns(), override_settings(INFRA_POLL_SECONDS=1):
        _drive_jobs(tenant, say=say)
        _publish_platform_names(say=say)
        with schema_context(tenant.schema_name):
            if not SendingDomain.objects.filter(name=DEMO_DOMAIN).exists():
                add_domain(principal, name=DEMO_DOMAIN)
                say(f"Adding the sending domain {DEMO_DOMAIN}…")
        _drive_jobs(tenant, say=say)
        with schema_context(tenant.schema_name):
            for local_part, display_name in DEMO_MAILBOXES:
                if not Mailbox.objects.filter(address=f"{local_part}@{DEMO_DOMAIN}").exists():
                    create_mailbox(
                        principal, local_part=local_part, domain=DEMO_DOMAIN,
                        display_name=display_name,
                    )  # fmt: skip
        _drive_jobs(tenant, say=say)
        with schema_context(tenant.schema_name):
            # A seasoned workspace: its mailboxes' warm-up began weeks ago, so the demo campaign
            # sends at full volume while warm-up carries on at its maintenance level.
            for mailbox in Mailbox.objects.all():
                warmup_pool.season(mailbox, days=DEMO_WARMUP_AGE_DAYS)

    with schema_context(tenant.schema_name):
        domain = SendingDomain.objects.get(name=DEMO_DOMAIN)
        boxes = ", ".join(f"{m.address} ({m.status})" for m in Mailbox.objects.order_by("address"))
    servers = ", ".join(
        f"{v.hostname} {v.main_ip} ({v.status})" for v in VpsInstance.objects.filter(tenant=tenant)
    )
    say(f"Demo servers:   {servers}")
    say(f"Demo domain:    {domain.name} ({domain.status})")
    say(f"Demo mailboxes: {boxes}")


def _drive_jobs(tenant: Tenant, *, say: Callable[[str], None], limit: int = 200) -> None:
    """Run this tenant's jobs now, in run_at order, waiting (briefly) for ones due soon.

    Urgent jobs already published to Redis are claimable too: the claim is conditional, so if a
    worker is up and takes one first, the runner here just skips it. Re-checks scheduled hours
    ahead (a verified domain's next check) are left to the worker.
    """
    horizon = 60.0
    for _ in range(limit):
        job = (
            Job.objects.filter(Q(tenant=tenant) | Q(tenant__isnull=True, payload__has_key="vps_id"))
            .filter(status__in=CLAIMABLE_STATUSES)
            .order_by("run_at", "priority", "id")
            .first()
        )
        if job is None:
            return
        wait = (job.run_at - timezone.now()).total_seconds()
        if wait > horizon:
            return
        if wait > 0:
            time.sleep(wait)
        runner.run(job.pk, worker_id="demo-seed")
        cast(TenantConnection, connection).set_schema_to_public()
    say("Demo seeding stopped after many jobs; the worker will finish the rest.")


def _publish_platform_names(*, say: Callable[[str], None]) -> None:
    """The platform's names the demo domain's records point at (mail host, SPF include,
    tracking target) into the sandbox zone, once the server's IPs exist, and every IP's reverse
    DNS with its forward A (the local VPS provider publishes these as it sets them; republished
    here so a zone made before that, or lost, is complete again). docs/dns.md."""
    if settings.DNS_PROVIDER != DnsProviderName.LOCAL:
        return
    zones = ZoneStore(settings.SANDBOX_DNS_ZONES)
    names = reverse_dns_names()
    publish_reverse_dns(zones, names)
    for ip, name in names.items():
        say(f"Sandbox DNS:    {ip} <-> {name} (PTR and A)")
    ips = all_tenants_sending_ips()
    publish_platform_names(zones, sending_ips=ips)
    say(f"Sandbox DNS:    {settings.SENDING_MAIL_HOST} -> {', '.join(ips) or '127.0.0.1'}")


class SandboxDnsTaken(Conflict):
    """SANDBOX_DNS_PORT is held by something other than this checkout's sandbox DNS server."""


def _sandbox_dns() -> AbstractContextManager[object]:
    """The sandbox DNS server for the seeding's own domain check. When the port is taken, the
    listener is used only if it proves to serve this checkout's zone file (the Procfile's `dns`
    process): otherwise SandboxDnsTaken, and nothing is checked against a stranger."""
    host, port = settings.SANDBOX_DNS_HOST, settings.SANDBOX_DNS_PORT
    store = ZoneStore(settings.SANDBOX_DNS_ZONES)
    try:
        server = start_sandbox_dns(host, port, store)
    except OSError:
        _require_our_sandbox(host, port, store)
        return nullcontext()  # the Procfile's `dns` process, serving the same zone file

    class _Running:
        def __enter__(self) -> object:
            return server

        def __exit__(self, *exc: object) -> None:
            server.stop()

    return _Running()


def _require_our_sandbox(host: str, port: int, store: ZoneStore) -> None:
    """Write a random TXT record into our zone file and ask the server on the port for it: our
    sandbox re-reads the file on each query and answers it; any other server cannot."""
    token = secrets.token_hex(12)
    name, value = f"{token}._pm-sentinel.invalid", f"penguinmails sandbox {token}"
    store.add(ZoneRecord.make(name, "TXT", value, ttl=0))
    try:
        answers = _ask_txt(host, port, name)
    finally:
        store.remove(name)
    if answers is not None and value in answers:
        return
    what = (
        "answers DNS but is not this checkout's sandbox"
        if answers is not None
        else "is taken by something that does not answer DNS"
    )
    raise SandboxDnsTaken(
        f"SANDBOX_DNS_PORT: port {port} on {host} {what} (it does not serve "
        f"{settings.SANDBOX_DNS_ZONES}); set SANDBOX_DNS_PORT to a free port."
    )


def _ask_txt(host: str, port: int, name: str, attempts: int = 2) -> list[str] | None:
    """The TXT values the server at host:port gives for `name` (empty: none, e.g. NXDOMAIN), or
    None when nothing answers DNS there."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    for _ in range(attempts):
        try:
            reply = dns.query.udp(query, host, port=port, timeout=2.0)
        except (dns.exception.DNSException, OSError):
            continue
        return [
            b"".join(rdata.strings).decode(errors="replace")
            for rrset in reply.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for rdata in rrset
        ]
    return None


# --- The demo campaign (issue 5, item 9) ---------------------------------------------------------
DEMO_LIST = "Demo prospects"
DEMO_CAMPAIGN = "Demo outreach"
DEMO_LEADS = (
    ("ada@prospects.example", "Ada", "Lovelace", "Analytical Engines", "Europe/London"),
    ("grace@prospects.example", "Grace", "Hopper", "Compilers Inc", "America/New_York"),
    ("alan@prospects.example", "Alan", "Turing", "Bletchley Labs", "Europe/London"),
    ("katherine@prospects.example", "Katherine", "Johnson", "Orbital Math", "America/Chicago"),
    ("edsger@prospects.example", "Edsger", "Dijkstra", "Shortest Paths BV", "Europe/Amsterdam"),
    ("barbara@prospects.example", "Barbara", "Liskov", "Substitution Co", "America/New_York"),
)
# How the sandbox prospects answer the demo campaign (docs/sandbox.md, "The demo"): the sandbox
# SMTP server in deliver mode sends each answer to the sending mailbox in the sandbox Dovecot.
DEMO_ANSWERS = (
    ("alan@prospects.example", "bounce"),
    ("edsger@prospects.example", "bounce"),
    ("barbara@prospects.example", "complain"),
    ("ada@prospects.example", "reply"),
    ("grace@prospects.example", "reply"),
    ("katherine@prospects.example", "ooo"),
)
# Content switches (docs/sending.md, "Content"): what a careful cold sender chooses. No open
# pixel: on a short message SpamAssassin counts it (HTML_IMAGE_ONLY_08, 0.6), and mail clients
# preload it anyway; clicks still show on the campaign page.
DEMO_CAMPAIGN_CONTENT = {"track_opens": False, "plain_text_only": False}
DEMO_TEMPLATES = (
    (
        "Demo: first touch",
        "{Quick question|A thought} for {{company|your team}}",
        "<p>{Hi|Hello} {{first_name|there}},</p>"
        "<p>I noticed {{company|your company}} is growing. We help teams like yours land in the "
        'inbox instead of spam: <a href="https://penguinmails.example/tour">take the tour</a>.</p>'
        "<p>Worth a chat this week?</p><p>Alex</p>",
    ),
    (
        "Demo: follow-up",
        "Re: {{company|your team}}",
        "<p>{{first_name|Hi}}, just bumping this up.</p>"
        '<p>Here is a two-minute <a href="https://penguinmails.example/case-study">case study</a>'
        " from a team like {{company|yours}}.</p><p>Alex</p>",
    ),
)


def seed_demo_campaign(tenant: Tenant, owner: User, *, say: Callable[[str], None]) -> None:
    """Templates, a list of prospects and a two-step campaign from the demo mailboxes, started:
    the worker sends its first step into the sandbox inbox, where opening a message and clicking
    its links shows up on the campaign page. Skipped when the campaign exists."""
    membership = active_membership(owner, tenant)
    if membership is None:
        raise RuntimeError("the demo owner is not an active member of the demo workspace")
    principal = principal_for_membership(membership)
    with schema_context(tenant.schema_name):
        if Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
            return
        mailboxes = list(
            Mailbox.objects.filter(address__endswith=f"@{DEMO_DOMAIN}", status=MailboxStatus.ACTIVE)
        )
        if not mailboxes:
            say("Demo campaign skipped: no active demo mailbox.")
            return
        templates = []
        for name, subject, html_body in DEMO_TEMPLATES:
            found = EmailTemplate.objects.filter(name=name).first()
            templates.append(
                found or create_template(principal, name=name, subject=subject, html_body=html_body)
            )
        rows = [
            {"email": e, "first_name": f, "last_name": la, "company": c, "timezone": tz}
            for e, f, la, c, tz in DEMO_LEADS
        ]
        create_leads(principal, rows=rows, list_name=DEMO_LIST)
        lead_list = LeadList.objects.get(name=DEMO_LIST)
        campaign = campaign_service.create_campaign(
            principal,
            name=DEMO_CAMPAIGN,
            timezone="UTC",
            window_days=list(range(7)),
            window_start=dt_time(0, 0),
            window_end=dt_time(23, 59),
            daily_cap=100,
            min_gap_seconds=2,
            max_gap_seconds=8,
            stop_on_reply=True,
            **DEMO_CAMPAIGN_CONTENT,
            lead_list_ids=[lead_list.pk],
            mailbox_ids=[m.pk for m in mailboxes],
        )
        campaign_service.add_step(
            principal, campaign, delay_amount=0, delay_unit="hours",
            variants=[(templates[0].pk, 1)],
        )  # fmt: skip
        campaign_service.add_step(
            principal, campaign, delay_amount=1, delay_unit="hours",
            variants=[(templates[1].pk, 1)],
        )  # fmt: skip
        logins = seed_sandbox_answers([m.address for m in mailboxes], say=say)
        for mailbox in mailboxes:
            # The poller reads what comes back (bounces, the complaint, replies) from Dovecot.
            attach_sandbox_imap(
                mailbox, host=settings.SANDBOX_IMAP_HOST, port=settings.SANDBOX_IMAP_PORT,
                password=logins[mailbox.address],
            )  # fmt: skip
        campaign_service.start_campaign(principal, campaign)
    say(f"Demo campaign:  {DEMO_CAMPAIGN} (running; {len(DEMO_LEADS)} leads, 2 steps)")


def seed_demo(
    sender: object, *, tenant: Tenant, owner: User, say: Callable[[str], None], **_: object
) -> None:
    """Receiver of tenants.signals.demo_workspace_ready (connected by CampaignsConfig.ready)."""
    seed_demo_infrastructure(tenant, owner, say=say)
    seed_demo_campaign(tenant, owner, say=say)


def seed_sandbox_answers(mailboxes: list[str], *, say: Callable[[str], None]) -> dict[str, str]:
    """The demo prospects' answers in the sandbox rule table (SANDBOX_RULES), and the demo
    mailboxes as users of the sandbox Dovecot (SANDBOX_IMAP_DIR), so the answers land in them.
    A user already there keeps its password. Returns each mailbox's Dovecot password."""
    rules = RuleStore(settings.SANDBOX_RULES)
    for address, action in DEMO_ANSWERS:
        rules.set(make_rule(address, action))
    imap = SandboxImap(
        settings.SANDBOX_IMAP_DIR, settings.SANDBOX_IMAP_HOST, settings.SANDBOX_IMAP_PORT
    )
    known = imap.users()
    missing = {a: secrets.token_urlsafe(18) for a in mailboxes if a not in known}
    if missing:
        imap.add_users(missing)
    answers = ", ".join(f"{a.split('@')[0]} {action}" for a, action in DEMO_ANSWERS)
    say(f"Sandbox answers: {answers}")
    return {address: {**known, **missing}[address] for address in mailboxes}
