"""Benchmark of the send path (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/send.py

Uses its own database (pm_bench_send on DATABASE_URL's server, dropped afterwards), its own
redis-server on a free loopback port, its own tenant, the sandbox SMTP server on a free port (in
a process of its own, so the server and the bench driver do not share one GIL; the same server
for both figures) and its own worker processes (one node, -c BENCH_CONCURRENCY) and beat.
BENCH_MESSAGES (10,000 by default: a sustained run, about 20 send jobs) sets the volume;
BENCH_DKIM=0 sends unsigned (the sending domain's key is a placeholder). Prints,
side by side, messages/s of:

- a bare smtplib loop: the same number of prebuilt messages over BENCH_MAILBOXES connections
  (round robin) to the same server, the baseline the pipeline cannot beat;
- the pipeline: a campaign started with BENCH_MESSAGES leads (one step, no gaps, high limits),
  from the scheduler through the durable queue and the batched send jobs into the sandbox,
  timed from `start` to the last message recorded as sent.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import shutil
import signal
import smtplib
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/queue.py would shadow the standard library's `queue`: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
from bench._harness import (  # noqa: E402
    bench_database,
    celery_processes,
    free_port,
    private_redis,
    setup_django,
    wait,
)

N = int(os.environ.get("BENCH_MESSAGES", "10000"))
MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "4"))
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "2")
DB_NAME = "pm_bench_send"
USER, PASSWORD = "bench@send.bench.test", "bench-password"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-send-"))
    smtp_port = free_port()
    sandbox = multiprocessing.get_context("spawn").Process(
        target=serve_sandbox, args=(smtp_port, str(tmp / "maildir")), daemon=True
    )
    sandbox.start()
    try:
        with bench_database(DB_NAME), private_redis(tmp):
            setup_django()
            tenant, campaign_id, principal = setup(smtp_port)
            wait(lambda: smtp_ready(smtp_port), 30, "the sandbox SMTP server", interval=0.1)
            baseline = bare_smtplib(smtp_port)
            with celery_processes(tmp, CONCURRENCY):
                rate = pipeline(tenant, campaign_id, principal)
        print(
            f"send path, {N} messages, {MAILBOXES} mailboxes, 1 worker node -c {CONCURRENCY}, "
            f"sandbox SMTP in its own process, {os.cpu_count()} CPUs:"
        )
        print(f"  bare smtplib loop:       {baseline:8.0f} messages/s")
        print(f"  scheduler+queue+pipeline:{rate:8.0f} messages/s")
        print(f"  ratio (pipeline / bare): {rate / baseline:8.2f}  (goal: 1,000 messages/s)")
    finally:
        sandbox.terminate()
        sandbox.join(10)
        shutil.rmtree(tmp, ignore_errors=True)


def serve_sandbox(port: int, maildir: str) -> None:
    """The sandbox server in this (spawned) process until terminated. No logging is configured
    here, so aiosmtpd's per-command INFO lines cost a level check, not a write."""
    from penguinmails.sandbox.smtp import start_sandbox_smtp

    start_sandbox_smtp("127.0.0.1", port, Path(maildir), user=USER, password=PASSWORD)
    signal.pause()


def smtp_ready(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


def setup(smtp_port: int):  # noqa: ANN201 - (tenant, campaign id, principal)
    from django_tenants.utils import schema_context

    from billing.models import Plan
    from billing.services.plans import change_plan
    from campaigns.models import EmailTemplate, Lead, LeadList
    from campaigns.services import campaigns as svc
    from deliverability.models import Mailbox, MailboxKind, MailboxStatus, Security, SendingDomain
    from tenants.models import Membership, User
    from tenants.services.access import principal_for_membership
    from tenants.services.tenancy import create_tenant, ensure_template_tenant

    ensure_template_tenant()
    owner = User.objects.create_user("owner@send.bench.test", "bench-password-123")
    tenant = create_tenant(name="Send bench", slug="sendbench", owner=owner)
    biggest = Plan.objects.order_by("-monthly_price").first()
    assert biggest is not None
    change_plan(tenant, plan=biggest, actor=owner)
    principal = principal_for_membership(Membership.objects.get(tenant=tenant, user=owner))
    # A real key: every message is DKIM-signed as in production (BENCH_DKIM=0: a placeholder
    # key, messages go out unsigned, the figure before signing existed).
    if os.environ.get("BENCH_DKIM", "1") == "0":
        public, private = "x", "x"
    else:
        from deliverability.dns.records import generate_dkim_keypair

        keypair = generate_dkim_keypair()
        public, private = keypair.public_key_b64, keypair.private_key_pem
    with schema_context(tenant.schema_name):
        SendingDomain.objects.create(
            name="send.bench.test", tracking_host="t.send.bench.test", dkim_selector="pm1",
            dkim_public_key=public, dkim_private_key=private, dmarc_rua="d@send.bench.test",
            status="verified",
        )  # fmt: skip
        boxes = [
            Mailbox.objects.create(
                address=f"box{i}@send.bench.test",
                display_name=f"Box {i}",
                kind=MailboxKind.OTHER,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,
                smtp_security=Security.NONE,
                smtp_username=USER,
                smtp_password=PASSWORD,
                daily_limit=N,
                status=MailboxStatus.ACTIVE,
            )  # fmt: skip
            for i in range(MAILBOXES)
        ]
        template = EmailTemplate.objects.create(
            name="Bench", subject="Hello {{first_name|there}}",
            html_body='<p>Hi {{first_name}}, <a href="https://example.org/x">look</a>.</p>',
            text_body="Hi {{first_name}}, https://example.org/x",
        )  # fmt: skip
        lead_list = LeadList.objects.create(name="Bench")
        leads = Lead.objects.bulk_create(
            Lead(email=f"lead{i}@example.com", first_name=f"L{i}") for i in range(N)
        )
        Lead.lists.through.objects.bulk_create(
            Lead.lists.through(lead_id=lead.pk, leadlist_id=lead_list.pk) for lead in leads
        )
        campaign = svc.create_campaign(
            principal, name="Bench", lead_list_ids=[lead_list.pk],
            mailbox_ids=[b.pk for b in boxes], window_days=list(range(7)),
            window_start=dt.time(0), window_end=dt.time(23, 59),
            daily_cap=N, min_gap_seconds=0, max_gap_seconds=0,
        )  # fmt: skip
        svc.add_step(principal, campaign, delay_amount=0, variants=[(template.pk, 1)])
    return tenant, campaign.pk, principal


def bare_smtplib(port: int) -> float:
    clients = []
    for _ in range(MAILBOXES):
        client = smtplib.SMTP("127.0.0.1", port)
        client.login(USER, PASSWORD)
        clients.append(client)
    messages = []
    for i in range(N):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "box@send.bench.test", f"b{i}@example.com", "Hi"
        msg.set_content("Hi there, https://example.org/x")
        messages.append(msg)
    started = time.perf_counter()
    for i, msg in enumerate(messages):
        clients[i % MAILBOXES].send_message(msg)
    elapsed = time.perf_counter() - started
    for client in clients:
        client.quit()
    return N / elapsed


def pipeline(tenant, campaign_id: int, principal) -> float:  # noqa: ANN001
    from django_tenants.utils import schema_context

    from campaigns.models import Campaign, Message, MessageStatus
    from campaigns.services import campaigns as svc

    with schema_context(tenant.schema_name):
        started = time.perf_counter()
        svc.start_campaign(principal, Campaign.objects.get(pk=campaign_id))
        done = Message.objects.filter(status=MessageStatus.SENT)
        wait(lambda: done.count() >= N, 1800, "the pipeline", interval=0.25)
        elapsed = time.perf_counter() - started
    return N / elapsed


if __name__ == "__main__":
    main()
