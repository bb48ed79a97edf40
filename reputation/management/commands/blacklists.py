"""`manage.py blacklists check IP|DOMAIN`: each enabled list's verdict (nothing recorded);
`blacklists listings [--tenant SLUG]`: the live listings."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reputation.services import blocklists
from reputation.services.blocklists_dns import BadSubject
from tenants.models import Tenant


class Command(BaseCommand):
    help = "DNS blocklists: `check IP|DOMAIN`, `listings [--tenant SLUG]`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        check = sub.add_parser("check", help="Ask every enabled list about an IP or a domain.")
        check.add_argument("subject")
        listings = sub.add_parser("listings", help="The live listings.")
        listings.add_argument("--tenant", help="a tenant's slug (its IPs and domains)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "check":
            self._check(options["subject"])
        else:
            self._listings(options.get("tenant"))

    def _check(self, subject: str) -> None:
        try:
            answers = blocklists.check_subjects([subject])
        except BadSubject as exc:
            raise CommandError(str(exc)) from exc
        except ValueError as exc:  # a malformed DNSBL_RESOLVER
            raise CommandError(f"DNSBL_RESOLVER: {exc}") from exc
        if not answers:
            self.stdout.write("No enabled blocklist of that kind.")
        for a in answers:
            extra = " ".join(x for x in (", ".join(a.codes), a.reason, a.detail) if x)
            self.stdout.write(f"{a.zone}\t{a.verdict}" + (f"\t{extra}" if extra else ""))

    def _listings(self, slug: str | None) -> None:
        if slug:
            tenant = Tenant.objects.filter(slug=slug, is_template=False).first()
            if tenant is None:
                raise CommandError(f"No tenant {slug!r}.")
            rows = blocklists.tenant_listings(tenant)
        else:
            rows = blocklists.all_ip_listings()
        if not rows:
            self.stdout.write("No live listings.")
        for r in rows:
            self.stdout.write(
                f"{r.kind}\t{r.subject}\t{r.list_name} ({r.zone})"
                f"\tsince {r.listed_at:%Y-%m-%d %H:%M}\t{r.answer}"
            )
