"""`manage.py sandbox smtp` / `dns` / `imap`: run a sandbox server in the foreground (dev only)."""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from penguinmails.sandbox.delivery import Delivery
from penguinmails.sandbox.dns import (
    BLOCKLIST_LISTED,
    BLOCKLIST_REFUSED,
    DEFAULT_DOMAIN_BLOCKLIST,
    DEFAULT_IP_BLOCKLIST,
    ZoneStore,
    run_sandbox_dns,
    stage_blocklisting,
)
from penguinmails.sandbox.imap import DovecotError, SandboxImap
from penguinmails.sandbox.rules import ACTIONS, RuleError, RuleStore, make_rule
from penguinmails.sandbox.smtp import start_sandbox_smtp
from penguinmails.sandbox.store import SandboxStore
from penguinmails.sandbox.stripe_server import serve as serve_stripe


class Command(BaseCommand):
    help = (
        "Local stand-ins for Mailu and DNS: `sandbox smtp` runs the SMTP server, `sandbox dns` "
        "the DNS server serving the local provider's zones, `sandbox imap` a private Dovecot "
        "(IMAP), `sandbox clear`; `sandbox rule ADDRESS ACTION` / `sandbox rules` what the SMTP "
        "server's recipients do; `sandbox stripe` the local Stripe (docs/billing.md)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        smtp = sub.add_parser("smtp", help="Run the sandbox SMTP server until interrupted.")
        smtp.add_argument("--host", default=settings.SANDBOX_SMTP_HOST)
        smtp.add_argument("--port", type=int, default=settings.SANDBOX_SMTP_PORT)
        smtp.add_argument("--maildir", default=str(settings.SANDBOX_MAILDIR))
        smtp.add_argument(
            "--deliver",
            action="store_true",
            help="Also deliver into the sandbox Dovecot (SANDBOX_IMAP_*) and apply the rules.",
        )
        rule = sub.add_parser("rule", help="Set or clear what a sandbox recipient does.")
        rule.add_argument("address", help="an address, or *@domain for a whole domain")
        rule.add_argument("action", nargs="?", help=" | ".join(ACTIONS))
        rule.add_argument("--clear", action="store_true", help="Remove the address's rule.")
        rule.add_argument("--share", type=float, default=1.0, help="Fraction of messages (0-1].")
        sub.add_parser("rules", help="List the sandbox recipients' rules.")
        sub.add_parser("clear", help="Delete every captured message.")
        dns = sub.add_parser("dns", help="Run the sandbox DNS server until interrupted.")
        dns.add_argument("--host", default=settings.SANDBOX_DNS_HOST)
        dns.add_argument("--port", type=int, default=settings.SANDBOX_DNS_PORT)
        dns.add_argument("--zones", default=str(settings.SANDBOX_DNS_ZONES))
        bl = sub.add_parser("blacklist", help="Stage (or --remove) a blocklist listing.")
        bl.add_argument("subject", help="an IP address or a domain")
        bl.add_argument("--list", dest="zone", help="the list's zone (default Spamhaus ZEN/DBL)")
        bl.add_argument("--remove", action="store_true", help="Take the listing off again.")
        bl.add_argument("--refused", action="store_true", help=f"Answer {BLOCKLIST_REFUSED}.")
        bl.add_argument("--reason", help="the TXT reason served with the listing")
        imap = sub.add_parser("imap", help="Run the sandbox Dovecot (IMAP) until interrupted.")
        imap.add_argument("--host", default=settings.SANDBOX_IMAP_HOST)
        imap.add_argument("--port", type=int, default=settings.SANDBOX_IMAP_PORT)
        imap.add_argument("--dir", default=str(settings.SANDBOX_IMAP_DIR))
        stripe = sub.add_parser("stripe", help="Run the local Stripe until interrupted.")
        stripe.add_argument("--host", default="127.0.0.1")
        stripe.add_argument("--port", type=int, default=settings.SANDBOX_STRIPE_PORT)
        stripe.add_argument("--webhook-url", default=self._webhook_url())

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    @staticmethod
    def _webhook_url() -> str:
        port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
        return f"{settings.SITE_SCHEME}://{settings.BASE_DOMAIN}{port}/webhooks/stripe/"

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "stripe":
            try:
                serve_stripe(
                    options["host"],
                    options["port"],
                    webhook_url=options["webhook_url"],
                    webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
                    say=self._say,
                )
            except OSError as exc:
                raise CommandError(f"Cannot run the local Stripe: {exc}") from exc
            return
        if options["subcommand"] == "clear":
            count = SandboxStore().clear()
            self.stdout.write(f"Deleted {count} captured message(s).")
            return
        if options["subcommand"] == "dns":
            self._serve_dns(options["host"], options["port"], Path(options["zones"]))
            return
        if options["subcommand"] == "blacklist":
            self._blacklist(options)
            return
        if options["subcommand"] == "imap":
            self._serve_imap(SandboxImap(Path(options["dir"]), options["host"], options["port"]))
            return
        if options["subcommand"] in ("rule", "rules"):
            self._rules(options)
            return
        delivery = None
        if options["deliver"]:
            imap = SandboxImap(
                settings.SANDBOX_IMAP_DIR, settings.SANDBOX_IMAP_HOST, settings.SANDBOX_IMAP_PORT
            )
            delivery = Delivery(imap, RuleStore(settings.SANDBOX_RULES))
        self._serve(options["host"], options["port"], Path(options["maildir"]), delivery)

    def _rules(self, options: dict[str, Any]) -> None:
        store = RuleStore(settings.SANDBOX_RULES)
        if options["subcommand"] == "rules":
            for item in store.rules():
                share = f" (share {item.share:g})" if item.share < 1 else ""
                self.stdout.write(f"{item.address}\t{item.action}{share}")
            return
        if options["clear"]:
            if not store.clear(options["address"]):
                raise CommandError(f"No rule for {options['address']}.")
            self.stdout.write(f"Cleared the rule for {options['address']}.")
            return
        if not options["action"]:
            raise CommandError(f"Give an action ({' | '.join(ACTIONS)}) or --clear.")
        try:
            rule = make_rule(options["address"], options["action"], options["share"])
        except RuleError as exc:
            raise CommandError(str(exc)) from exc
        store.set(rule)
        self.stdout.write(f"{rule.address}: {rule.action}")

    def _serve(self, host: str, port: int, maildir: Path, delivery: Delivery | None) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            # It accepts one shared password without TLS: never expose it beyond loopback.
            raise CommandError(f"The sandbox SMTP server listens on loopback only, not {host}.")
        # aiosmtpd logs every SMTP command at INFO; keep the foreground output to what matters.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        try:
            controller = start_sandbox_smtp(host, port, maildir, delivery=delivery)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
        stop = threading.Event()
        # honcho stops processes with SIGTERM; Ctrl-C sends SIGINT. Both end cleanly.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(
            f"Sandbox SMTP listening on {host}:{controller.port} "
            f"(AUTH {settings.SANDBOX_SMTP_USER}/…), storing mail in {maildir}",
        )
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            controller.stop()
            self.stdout.write("Sandbox SMTP stopped.")

    def _blacklist(self, options: dict[str, Any]) -> None:
        subject = options["subject"].strip()
        is_ip = subject.replace(".", "").isdigit() or ":" in subject
        if is_ip:
            try:
                subject = str(ipaddress.ip_address(subject))
            except ValueError as exc:
                raise CommandError(f"{subject!r} is not an IP address.") from exc
        zone = options["zone"] or (DEFAULT_IP_BLOCKLIST if is_ip else DEFAULT_DOMAIN_BLOCKLIST)
        answer = BLOCKLIST_REFUSED if options["refused"] else BLOCKLIST_LISTED
        if not is_ip and "." not in subject:
            raise CommandError(f"{subject!r} is neither an IP address nor a domain.")
        try:
            name = stage_blocklisting(
                ZoneStore(settings.SANDBOX_DNS_ZONES),
                subject,
                zone=zone,
                answer=answer,
                reason=options["reason"],
                remove=options["remove"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        done = "removed" if options["remove"] else f"{answer}"
        self.stdout.write(f"{name}: {done}")

    def _serve_dns(self, host: str, port: int, zones: Path) -> None:
        zones.parent.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"Sandbox DNS on {host}:{port} (UDP and TCP), serving {zones}")
        self.stdout.flush()
        try:
            run_sandbox_dns(host, port, zones)  # until SIGINT/SIGTERM
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot serve DNS on {host}:{port}: {exc}") from exc
        self.stdout.write("Sandbox DNS stopped.")

    def _serve_imap(self, server: SandboxImap) -> None:
        if server.host not in ("127.0.0.1", "::1", "localhost"):
            # Plain-text passwords without TLS: never beyond loopback.
            raise CommandError(
                f"The sandbox IMAP server listens on loopback only, not {server.host}."
            )
        try:
            server.start()
        except DovecotError as exc:
            raise CommandError(str(exc)) from exc
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(
            f"Sandbox IMAP (Dovecot) on {server.host}:{server.port}, users in "
            f"{server.passwd_path}, mail in {server.mail_dir}, log {server.log_path}"
        )
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                if not server.running():
                    raise CommandError(f"Dovecot exited; see {server.log_path}")
        finally:
            server.stop()
            self.stdout.write("Sandbox IMAP stopped.")
