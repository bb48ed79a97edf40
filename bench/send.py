"""Benchmark of the send path (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/send.py

Uses its own database (pm_bench_send on DATABASE_URL's server, dropped afterwards), its own
redis-server on a free loopback port, its own tenant, its own worker processes and beat, and two
SMTP servers on free loopback ports:

- the sandbox (penguinmails.sandbox.smtp, aiosmtpd, AUTH, a Maildir), in a process of its own so
  it does not share the bench driver's GIL;
- Postfix's `smtp-sink` (Debian's `postfix` package, fetched with `apt-get download` and unpacked
  with `dpkg -x` into BENCH_CACHE, ~/.cache/penguinmails-bench by default; no Postfix is
  installed or started), a C server that is not the bottleneck. It answers AUTH with 250 where
  smtplib wants 235, so its mailboxes are stored without an SMTP username: open_smtp then sends
  without AUTH (the dashboard and API always store one).

For each server (BENCH_TARGETS, "sandbox,sink") and each number of worker nodes (BENCH_NODES,
"1,2": separate Celery nodes `-n w1@%h`, `-n w2@%h`, each `-c BENCH_CONCURRENCY`), messages/s of:

- a bare smtplib loop: BENCH_MESSAGES (10,000) prebuilt messages over BENCH_MAILBOXES (4)
  connections (round robin) to that server, measured right before the pipeline;
- the pipeline: a campaign started with BENCH_MESSAGES leads (one step, no gaps, high limits),
  from the scheduler through the durable queue and the batched send jobs into that server, timed
  from `start` to the last message recorded as sent.

After each run it counts what the server received: every message once (distinct Message-IDs
equal to the campaign's, none twice, none missing), or it exits non-zero. BENCH_DKIM=0 sends
unsigned (the sending domain's key is a placeholder).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/queue.py would shadow the standard library's `queue`: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
from bench._harness import (  # noqa: E402
    bench_database,
    free_port,
    private_redis,
    setup_django,
    stop,
    wait,
)

N = int(os.environ.get("BENCH_MESSAGES", "10000"))
MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "4"))
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "2")
NODES = [int(n) for n in os.environ.get("BENCH_NODES", "1,2").split(",")]
TARGETS = os.environ.get("BENCH_TARGETS", "sandbox,sink").split(",")
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "penguinmails-bench"))
DB_NAME = "pm_bench_send"
USER, PASSWORD = "bench@send.bench.test", "bench-password"
MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-send-"))
    servers: dict[str, Server] = {}
    try:
        if "sandbox" in TARGETS:
            servers["sandbox"] = sandbox_server(tmp)
        if "sink" in TARGETS:
            servers["sink"] = sink_server(tmp)
        with bench_database(DB_NAME), private_redis(tmp):
            setup_django()
            tenant, principal = setup()
            for server in servers.values():
                wait(lambda s=server: smtp_ready(s.port), 30, server.name, interval=0.1)
            rows = []
            for nodes in NODES:
                campaigns = {
                    name: make_campaign(principal, server, f"{name}{nodes}")
                    for name, server in servers.items()
                }
                with worker_nodes(tmp, nodes):
                    for name, server in servers.items():
                        load = os.getloadavg()[0]
                        baseline = bare_smtplib(server)
                        rate = pipeline(tenant, campaigns[name], principal)
                        check_received(tenant, campaigns[name], server)
                        load = max(load, os.getloadavg()[0])
                        rows.append((name, nodes, baseline, rate, load))
        print(
            f"send path, {N} messages, {MAILBOXES} mailboxes, worker nodes -c {CONCURRENCY}, "
            f"{os.cpu_count()} CPUs (messages/s; every message received once):"
        )
        print("  server   nodes  bare smtplib  pipeline  ratio  load (1 min)")
        for name, nodes, baseline, rate, load in rows:
            print(
                f"  {name:8} {nodes:5} {baseline:12.0f} {rate:9.0f} {rate / baseline:6.2f}"
                f"  {load:5.1f}"
            )
        print("  goal: pipeline >= 0.8 x the bare loop, into both servers")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- the servers ---------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, port: int, auth: bool, stop_fn, received_fn) -> None:  # noqa: ANN001
        self.name, self.port, self.auth = name, port, auth
        self._stop, self._received = stop_fn, received_fn

    def stop(self) -> None:
        self._stop()

    def received(self) -> Counter[bytes]:
        """Message-ID -> how many times the server got it, so far."""
        return self._received()


def sandbox_server(tmp: Path) -> Server:
    port, maildir = free_port(), tmp / "maildir"
    proc = multiprocessing.get_context("spawn").Process(
        target=serve_sandbox, args=(port, str(maildir)), daemon=True
    )
    proc.start()

    def halt() -> None:
        proc.terminate()
        proc.join(10)

    def received() -> Counter[bytes]:
        found: Counter[bytes] = Counter()
        for path in (maildir / "new").iterdir():
            head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
            found.update(MESSAGE_ID.findall(head))
        return found

    return Server("sandbox", port, True, halt, received)


def serve_sandbox(port: int, maildir: str) -> None:
    """The sandbox server in this (spawned) process until terminated. No logging is configured
    here, so aiosmtpd's per-command INFO lines cost a level check, not a write."""
    from penguinmails.sandbox.smtp import start_sandbox_smtp

    start_sandbox_smtp("127.0.0.1", port, Path(maildir), user=USER, password=PASSWORD)
    signal.pause()


def smtp_sink_binary() -> tuple[Path, dict[str, str]]:
    """smtp-sink from Debian's postfix package, unpacked once into CACHE (nothing installed)."""
    root = CACHE / "postfix" / "root"
    binary = root / "usr/sbin/smtp-sink"
    if not binary.exists():
        (CACHE / "postfix").mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["apt-get", "download", "postfix"], cwd=CACHE / "postfix", check=True,
                capture_output=True, timeout=300,
            )  # fmt: skip
            (deb,) = (CACHE / "postfix").glob("postfix_*.deb")
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True, capture_output=True)
        except (subprocess.SubprocessError, ValueError, OSError) as exc:
            raise SystemExit(
                f"could not fetch Debian's postfix package for smtp-sink: {exc}"
            ) from exc
    return binary, {**os.environ, "LD_LIBRARY_PATH": str(root / "usr/lib/postfix")}


def sink_server(tmp: Path) -> Server:
    binary, env = smtp_sink_binary()
    port, dumps = free_port(), tmp / "sink"
    dumps.mkdir()
    tmp.chmod(0o711)  # smtp-sink writes as `nobody` once it dropped root
    dumps.chmod(0o777)
    dump = dumps / "all"
    # As root, smtp-sink must be told whose privileges to take after binding its socket.
    privs = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [str(binary), *privs, "-D", str(dump), "-c", f"127.0.0.1:{port}", "1000"],
        env=env, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def received() -> Counter[bytes]:
        found: Counter[bytes] = Counter()
        for path in dumps.iterdir():  # one file (-D appends), whatever suffix it was given
            found.update(MESSAGE_ID.findall(path.read_bytes()))
        return found

    return Server("sink", port, False, lambda: stop(proc), received)


def smtp_ready(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


# --- the tenant and its campaigns ----------------------------------------------------------------
def setup():  # noqa: ANN201 - (tenant, principal)
    from django_tenants.utils import schema_context

    from billing.models import Plan
    from billing.services.plans import change_plan
    from deliverability.models import SendingDomain
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
    return tenant, principal


def make_campaign(principal, server: Server, tag: str) -> int:  # noqa: ANN001
    """A one-step campaign of N leads over MAILBOXES mailboxes on `server`; its id."""
    from django_tenants.utils import schema_context

    from campaigns.models import EmailTemplate, Lead, LeadList
    from campaigns.services import campaigns as svc
    from deliverability.models import Mailbox, MailboxKind, MailboxStatus, Security

    with schema_context(principal.tenant.schema_name):
        boxes = [
            Mailbox.objects.create(
                address=f"box{i}-{tag}@send.bench.test",
                display_name=f"Box {i}",
                kind=MailboxKind.OTHER,
                smtp_host="127.0.0.1",
                smtp_port=server.port,
                smtp_security=Security.NONE,
                smtp_username=USER if server.auth else "",
                smtp_password=PASSWORD if server.auth else "",
                daily_limit=N,
                status=MailboxStatus.ACTIVE,
            )  # fmt: skip
            for i in range(MAILBOXES)
        ]
        template = EmailTemplate.objects.create(
            name=f"Bench {tag}", subject="Hello {{first_name|there}}",
            html_body='<p>Hi {{first_name}}, <a href="https://example.org/x">look</a>.</p>',
            text_body="Hi {{first_name}}, https://example.org/x",
        )  # fmt: skip
        lead_list = LeadList.objects.create(name=f"Bench {tag}")
        leads = Lead.objects.bulk_create(
            Lead(email=f"lead{i}@{tag}.example.com", first_name=f"L{i}") for i in range(N)
        )
        Lead.lists.through.objects.bulk_create(
            Lead.lists.through(lead_id=lead.pk, leadlist_id=lead_list.pk) for lead in leads
        )
        campaign = svc.create_campaign(
            principal, name=f"Bench {tag}", lead_list_ids=[lead_list.pk],
            mailbox_ids=[b.pk for b in boxes], window_days=list(range(7)),
            window_start=dt.time(0), window_end=dt.time(23, 59),
            daily_cap=N, min_gap_seconds=0, max_gap_seconds=0,
        )  # fmt: skip
        svc.add_step(principal, campaign, delay_amount=0, variants=[(template.pk, 1)])
    return int(campaign.pk)


# --- the workers ---------------------------------------------------------------------------------
@contextmanager
def worker_nodes(workdir: Path, nodes: int) -> Iterator[None]:
    """`nodes` separate Celery worker nodes (`-n w1@%h`, `-n w2@%h`, ...; each -c CONCURRENCY,
    every queue) and one beat, as `make run` starts them on several hosts over one Redis;
    returns once every node is seen alive, stops them all on the way out."""
    from penguinmails.queue import live

    celery = [sys.executable, "-m", "celery", "-A", "penguinmails"]
    commands = [
        celery
        + ["worker", "-Q", "high,default,low", "-c", CONCURRENCY, "-n", f"w{i}@%h"]
        + ["--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
        for i in range(1, nodes + 1)
    ]
    commands.append(celery + ["beat", "-s", str(workdir / f"beat{nodes}"), "--loglevel", "WARNING"])
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)
        for cmd in commands
    ]
    try:
        names = {f"w{i}@" for i in range(1, nodes + 1)}
        wait(
            lambda: names <= {w.split("@")[0] + "@" for w in live.live_workers()},
            90, f"{nodes} worker nodes", interval=0.1,
        )  # fmt: skip
        yield
    finally:
        for proc in procs:
            proc.terminate()  # the main process: a warm shutdown that lets its pool finish
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                stop(proc)


# --- the figures ---------------------------------------------------------------------------------
def bare_smtplib(server: Server) -> float:
    clients = []
    for _ in range(MAILBOXES):
        client = smtplib.SMTP("127.0.0.1", server.port)
        if server.auth:
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
        done = Message.objects.filter(campaign_id=campaign_id, status=MessageStatus.SENT)
        wait(lambda: done.count() >= N, 1800, "the pipeline", interval=0.25)
        elapsed = time.perf_counter() - started
    return N / elapsed


def check_received(tenant, campaign_id: int, server: Server) -> None:  # noqa: ANN001
    """Every message of the campaign reached the server exactly once, and nothing else of it."""
    from django_tenants.utils import schema_context

    from campaigns.models import Message

    with schema_context(tenant.schema_name):
        ours = set(
            Message.objects.filter(campaign_id=campaign_id).values_list("message_id", flat=True)
        )
        statuses = Counter(
            Message.objects.filter(campaign_id=campaign_id).values_list("status", flat=True)
        )
    expected = {m.encode() for m in ours if m}
    received: Counter[bytes] = Counter()
    deadline = time.monotonic() + 10  # the sink appends its dump as it goes
    while time.monotonic() < deadline:
        received = Counter({k: v for k, v in server.received().items() if k in expected})
        if len(received) >= len(expected):
            break
        time.sleep(0.2)
    twice = sum(1 for v in received.values() if v > 1)
    missing = len(expected - set(received))
    print(
        f"  {server.name}: {len(received)} distinct Message-IDs received of {len(expected)} "
        f"({dict(statuses)}), {twice} twice, {missing} missing"
    )
    if twice or missing or len(expected) != N:
        raise SystemExit(f"{server.name}: a message was sent twice or lost")


if __name__ == "__main__":
    main()
