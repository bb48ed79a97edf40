"""Benchmark of the inbound poller (a script, not a test; issue 12, docs/inbound.md "Benchmark").

    python -m penguinmails.devenv exec -- .venv/bin/python bench/inbound.py

Uses its own database (pm_bench_inbound on DATABASE_URL's server, dropped afterwards), its own
redis-server on a free loopback port, its own tenant and its own Dovecot (penguinmails.sandbox.imap,
on a free port in a temporary directory, stopped and removed afterwards). The tenant has a
campaign whose BENCH_SENT (4,000) messages are recorded as sent from one mailbox read over IMAP
from that Dovecot. The mailbox's INBOX receives BENCH_MESSAGES (10,000) messages, written into its
Maildir directly (not timed): the corpus ../shared/data/bounces/ replicated, where 3 in 10 are
rewritten to be delivered to the VERP address of one of the sent messages (so the hard bounces
bounce it and suppress its address, the soft ones are counted, the complaints suppress and stop)
and 1 in 10 is replaced by a person's reply to one of them (In-Reply-To: stop on reply). Prints,
side by side, messages/s of:

- a bare imaplib fetch: login, EXAMINE, UID FETCH BODY.PEEK[] of the same messages in batches of
  BENCH_BARE_BATCH (500), against the same Dovecot, in the same process: the ceiling;
- the poller: `imap_reader.poll_mailbox` (what the `inbound.poll` job runs: fetch, store, classify,
  match, act) run again and again, as its self-enqueued continuations would, until it reports
  nothing more, with INBOUND_POLL_BATCH messages per run; checked afterwards (every message
  processed once, messages bounced, addresses suppressed, leads replied).

BENCH_PROFILE=PATH writes a cProfile of the poller's phase to PATH. The poller's SQL statements
(every one its connection ran, fetch to commit) are counted and printed per message;
BENCH_SQL_TOP=N also prints the N most frequent (their first 90 characters).
"""

from __future__ import annotations

import imaplib
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/queue.py would shadow the standard library's `queue`: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
from bench._harness import bench_database, private_redis, setup_django  # noqa: E402

N = int(os.environ.get("BENCH_MESSAGES", "10000"))
SENT = int(os.environ.get("BENCH_SENT", str(max(1, N * 4 // 10))))
BARE_BATCH = int(os.environ.get("BENCH_BARE_BATCH", "500"))
CORPUS = ROOT.parent / "shared" / "data" / "bounces" / "maildir"
DB_NAME = "pm_bench_inbound"
DOMAIN = "inbound.bench.test"
ADDRESS, PASSWORD = f"box@{DOMAIN}", "bench-imap-password"
GOAL_RATE, GOAL_RATIO = 500.0, 0.3


def main() -> None:
    from penguinmails.sandbox.imap import SandboxImap

    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-inbound-"))
    tmp.chmod(0o755)  # Dovecot's mail processes (user dovecot) must reach the Maildir
    imap = SandboxImap(tmp / "dovecot")
    try:
        with bench_database(DB_NAME), private_redis(tmp):
            setup_django()
            from django.conf import settings

            # Protection tells owners and staff by email when the bounces pause the mailbox;
            # there is no SMTP server here to take it (and it is not what is measured).
            settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
            imap.add_user(ADDRESS, PASSWORD)
            imap.start()
            tenant, mailbox_id, sent = setup(imap.port)
            started = time.perf_counter()
            write_maildir(imap, mixed_messages(tenant.pk, sent))
            uidvalidity = warm_up(imap)
            log(f"{N:,} messages written and indexed in {time.perf_counter() - started:.1f}s")
            bare = bare_fetch(imap)
            rate, runs = profiled(lambda: poller(tenant, mailbox_id, uidvalidity))
            check(tenant)
        print(
            f"inbound path, {N} messages ({SENT} sent messages to match), one mailbox, "
            f"Dovecot on loopback, {os.cpu_count()} CPUs:"
        )
        print(f"  bare imaplib fetch:      {bare:8.0f} messages/s  (batches of {BARE_BATCH})")
        print(f"  poller (fetch+act):      {rate:8.0f} messages/s  ({runs} poll runs)")
        print(
            f"  ratio (poller / bare):   {rate / bare:8.2f}  "
            f"(goal: {GOAL_RATE:,.0f} messages/s and {GOAL_RATIO} x the bare fetch)"
        )
    finally:
        imap.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def setup(imap_port: int):  # noqa: ANN201 - (tenant, mailbox id, sent messages)
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.models import Plan
    from billing.services.plans import change_plan
    from campaigns.models import CampaignLead, EmailTemplate, Lead, LeadList, Message
    from campaigns.services import campaigns as svc
    from deliverability.models import Mailbox, MailboxKind, MailboxStatus, Security, SendingDomain
    from deliverability.services.mailboxes.lifecycle import sync_poll_index
    from tenants.models import Membership, User
    from tenants.services.access import principal_for_membership
    from tenants.services.tenancy import create_tenant, ensure_template_tenant

    ensure_template_tenant()
    owner = User.objects.create_user(f"owner@{DOMAIN}", "bench-password-123")
    tenant = create_tenant(name="Inbound bench", slug="inboundbench", owner=owner)
    biggest = Plan.objects.order_by("-monthly_price").first()
    assert biggest is not None
    change_plan(tenant, plan=biggest, actor=owner)
    principal = principal_for_membership(Membership.objects.get(tenant=tenant, user=owner))
    now = timezone.now()
    with schema_context(tenant.schema_name):
        SendingDomain.objects.create(
            name=DOMAIN, tracking_host=f"t.{DOMAIN}", dkim_selector="pm1",
            dkim_public_key="x", dkim_private_key="x", dmarc_rua=f"d@{DOMAIN}",
            status="verified",
        )  # fmt: skip
        mailbox = Mailbox.objects.create(
            address=ADDRESS, display_name="Box", kind=MailboxKind.OTHER,
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security=Security.NONE,
            smtp_username=ADDRESS, smtp_password=PASSWORD,
            imap_host="127.0.0.1", imap_port=imap_port, imap_security=Security.NONE,
            imap_username=ADDRESS, imap_password=PASSWORD,
            daily_limit=SENT, status=MailboxStatus.ACTIVE,
        )  # fmt: skip
        sync_poll_index(mailbox)
        template = EmailTemplate.objects.create(
            name="Bench", subject="Hello", html_body="<p>Hi</p>", text_body="Hi"
        )
        lead_list = LeadList.objects.create(name="Bench")
        leads = Lead.objects.bulk_create(
            Lead(email=f"lead{i}@example.com", first_name=f"L{i}") for i in range(SENT)
        )
        Lead.lists.through.objects.bulk_create(
            Lead.lists.through(lead_id=lead.pk, leadlist_id=lead_list.pk) for lead in leads
        )
        campaign = svc.create_campaign(
            principal, name="Bench", lead_list_ids=[lead_list.pk], mailbox_ids=[mailbox.pk],
            window_days=list(range(7)),
        )  # fmt: skip
        step = svc.add_step(principal, campaign, delay_amount=0, variants=[(template.pk, 1)])
        variant = step.variants.get()
        # The campaign's first step as the pipeline leaves it: every lead enrolled (still active,
        # a second step to come) and its message sent from the mailbox.
        CampaignLead.objects.bulk_create(
            CampaignLead(campaign=campaign, lead=lead, status="active", next_step=2)
            for lead in leads
        )
        sent = Message.objects.bulk_create(
            Message(
                campaign=campaign,
                step=step,
                variant=variant,
                lead=lead,
                mailbox=mailbox,
                to_email=lead.email,
                status="sent",
                subject="Hello",
                scheduled_for=now,
                sent_at=now,
                attempts=1,
                message_id=make_msgid(domain=DOMAIN),
            )  # fmt: skip
            for lead in leads
        )
    return tenant, mailbox.pk, sent


def _corpus() -> list[bytes]:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"no corpus under {CORPUS}")
    return [p.read_bytes() for p in files]


def _reply(message) -> bytes:  # noqa: ANN001 - a campaigns Message
    mail = EmailMessage()
    mail["From"] = message.to_email
    mail["To"] = ADDRESS
    mail["Subject"] = "Re: Hello"
    mail["Message-ID"] = make_msgid(domain="example.com")
    mail["In-Reply-To"] = message.message_id
    mail["References"] = message.message_id
    mail.set_content("Sounds good, let's talk on Tuesday.\n\n> Hi\n")
    return mail.as_bytes()


def mixed_messages(tenant_id: int, sent: list) -> list[bytes]:  # noqa: ANN001
    """The corpus replicated to N messages; per ten, three delivered to a sent message's VERP
    address and one replaced by a reply to a sent message (each sent message used once)."""
    from campaigns.sending.verp import bounce_address

    corpus = _corpus()
    out: list[bytes] = []
    target = 0
    for i in range(N):
        raw = corpus[i % len(corpus)]
        slot = i % 10
        if slot < 4 and target < len(sent):
            message = sent[target]
            target += 1
            if slot == 3:
                raw = _reply(message)
            else:
                verp = bounce_address(tenant_id, message.pk, DOMAIN, local="box")
                raw = f"Delivered-To: {verp}\n".encode() + raw
        out.append(raw)
    return out


def write_maildir(imap, messages: list[bytes]) -> None:  # noqa: ANN001 - SandboxImap
    """The messages as unseen files in the user's Maildir INBOX (cur/), owned by Dovecot's mail
    user; Dovecot gives them UIDs in file-name order at the next EXAMINE."""
    import pwd

    from penguinmails.sandbox.imap import MAIL_OWNER

    owner = pwd.getpwnam(MAIL_OWNER)
    home = imap.mail_dir / ADDRESS
    stamp = int(time.time())
    for sub in ("cur", "new", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(messages):
        path = home / "cur" / f"{stamp}.M{i:06d}P1.bench,S={len(raw)}:2,"
        path.write_bytes(raw)
        os.chown(path, owner.pw_uid, owner.pw_gid)
    for directory in (home, *(home / s for s in ("cur", "new", "tmp"))):
        os.chown(directory, owner.pw_uid, owner.pw_gid)


def warm_up(imap) -> int:  # noqa: ANN001 - SandboxImap
    """Let Dovecot assign the UIDs and build its index (once, not timed); returns UIDVALIDITY."""
    client = imap.connect(ADDRESS, PASSWORD)
    try:
        client.select("INBOX", readonly=True)
        count = int(client.response("EXISTS")[1][-1] or 0)
        if count != N:
            raise SystemExit(f"Dovecot sees {count} messages, not {N}")
        return int(client.response("UIDVALIDITY")[1][0] or 0)
    finally:
        client.logout()


def bare_fetch(imap) -> float:  # noqa: ANN001 - SandboxImap
    started = time.perf_counter()
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    client.login(ADDRESS, PASSWORD)
    client.select("INBOX", readonly=True)
    got = 0
    for first in range(1, N + 1, BARE_BATCH):
        typ, data = client.uid("FETCH", f"{first}:{first + BARE_BATCH - 1}", "(BODY.PEEK[])")
        got += sum(1 for item in data if isinstance(item, tuple)) if typ == "OK" else 0
    client.logout()
    elapsed = time.perf_counter() - started
    if got != N:
        raise SystemExit(f"the bare fetch read {got} messages, not {N}")
    return N / elapsed


def poller(tenant, mailbox_id: int, uidvalidity: int) -> tuple[float, int]:  # noqa: ANN001
    """poll_mailbox until nothing more, as the job and its continuations would; the cursor
    starts before the first UID (the mailbox was read before these N arrived)."""
    from django.db import connection
    from django_tenants.utils import schema_context

    from deliverability.models import Mailbox
    from deliverability.services.imap_reader import poll_mailbox

    with schema_context(tenant.schema_name):
        Mailbox.objects.filter(pk=mailbox_id).update(
            inbound_cursor={"INBOX": {"uidvalidity": uidvalidity, "last_uid": 0}}
        )
    processed, runs, statements = 0, 0, 0

    kinds: Counter[str] = Counter()

    def count(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        nonlocal statements
        statements += 1
        kinds[" ".join(sql.split())[:90]] += 1
        return execute(sql, params, many, context)

    started = time.perf_counter()
    with connection.execute_wrapper(count):
        while True:
            report = poll_mailbox(tenant, mailbox_id)
            runs += 1
            processed += report.processed
            if report.failed or report.skipped or report.error:
                raise SystemExit(f"poll run {runs} went wrong: {report}")
            if not report.more:
                break
    elapsed = time.perf_counter() - started
    if processed != N:
        raise SystemExit(f"the poller acted on {processed} messages, not {N}")
    log(f"SQL statements per message: {statements / N:.2f} ({statements:,} in {runs} runs)")
    for sql, times in kinds.most_common(int(os.environ.get("BENCH_SQL_TOP", "0"))):
        log(f"  {times:6,}  {sql}")
    return N / elapsed, runs


def profiled(run):  # noqa: ANN001, ANN201
    """BENCH_PROFILE=PATH: the poller's phase under cProfile, its stats dumped to PATH."""
    path = os.environ.get("BENCH_PROFILE")
    if not path:
        return run()
    import cProfile

    profile = cProfile.Profile()
    try:
        return profile.runcall(run)
    finally:
        profile.dump_stats(path)
        log(f"profile of the poller written to {path}")


def check(tenant) -> None:  # noqa: ANN001
    """What the act step did, so the figure is of real work."""
    from django.db.models import Count
    from django_tenants.utils import schema_context

    from campaigns.models import Lead, Message, Suppression
    from deliverability.models import InboundMessage

    with schema_context(tenant.schema_name):
        states = dict(
            InboundMessage.objects.values_list("status").annotate(n=Count("id")).order_by()
        )
        kinds = dict(InboundMessage.objects.values_list("kind").annotate(n=Count("id")).order_by())
        matched = InboundMessage.objects.filter(matched_message_id__isnull=False).count()
        bounced = Message.objects.filter(status="bounced").count()
        suppressed = Suppression.objects.count()
        replied = Lead.objects.filter(status="replied").count()
    log(f"inbound states {states}; kinds {kinds}")
    log(
        f"matched {matched:,}; messages bounced {bounced:,}; addresses suppressed "
        f"{suppressed:,}; leads replied {replied:,}"
    )
    if states.get("processed") != N or not (bounced and suppressed and replied):
        raise SystemExit("the act step did not do what the bench expects")


if __name__ == "__main__":
    main()
