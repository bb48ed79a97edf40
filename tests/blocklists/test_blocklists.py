"""Blocklist checks against the sandbox DNS server: a staged listing quarantines the IP, moves
its sending and alerts; refusals are no listing; NXDOMAIN is clean; delisting restores."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from infrastructure.models import IpRole, IpStatus
from infrastructure.services.ips import sending_ips
from penguinmails.sandbox.dns import SandboxDnsServer, stage_blocklisting
from reputation.models import Blocklist, BlocklistCheck, Listing
from reputation.services import blocklists
from tests.blocklists.conftest import make_ip
from tests.conftest import Cast, client_for

IP_LISTS = 6


def _check(address: str, capture: Any) -> None:
    with capture(execute=True):
        blocklists.check_ips([address])
    connection.set_schema_to_public()


def test_the_seeded_lists_are_the_issues(cast: Cast, dnsbl: SandboxDnsServer) -> None:
    # (The fixture puts the migration's rows back after a transactional test's flush.)
    zones = dict(Blocklist.objects.values_list("zone", "kind"))
    assert [z for z, k in zones.items() if k == "ip"].__len__() == IP_LISTS
    assert {"zen.spamhaus.org", "b.barracudacentral.org", "bl.spamcop.net"} <= set(zones)
    assert {"dnsbl-1.uceprotect.net", "psbl.surriel.com", "bl.mailspike.net"} <= set(zones)
    assert zones["dbl.spamhaus.org"] == zones["multi.surbl.org"] == zones["multi.uribl.com"]
    assert zones["multi.uribl.com"] == "domain"


def test_it_finds_nxdomain_clean(cast: Cast, dnsbl: SandboxDnsServer) -> None:
    answers = blocklists.check_subjects(["127.0.0.50"])
    assert len(answers) == IP_LISTS
    assert {a.verdict for a in answers} == {"clean"}


def test_a_staged_listing_quarantines_moves_sending_and_alerts(
    cast: Cast, dnsbl: SandboxDnsServer, django_capture_on_commit_callbacks: Any
) -> None:
    listed = make_ip(cast.tenant, "127.0.0.60")
    spare = make_ip(cast.tenant, "127.0.0.61", status=IpStatus.ASSIGNED, role=IpRole.STANDBY)
    stage_blocklisting(dnsbl.store, "127.0.0.60", zone="bl.spamcop.net", reason="spam trap hits")
    mail.outbox.clear()

    _check("127.0.0.60", django_capture_on_commit_callbacks)

    listed.refresh_from_db()
    spare.refresh_from_db()
    assert listed.status == IpStatus.QUARANTINED
    assert (
        "SpamCop" in listed.quarantine_reason and "spamcop.net/bl.shtml" in listed.quarantine_reason
    )
    assert listed.replaced_by_id == spare.pk
    assert spare.status == IpStatus.WARMING and spare.role == IpRole.SENDING
    assert sending_ips(cast.tenant) == ["127.0.0.61"]
    (listing,) = blocklists.current_listings(ip="127.0.0.60")
    assert (listing.zone, listing.answer, listing.reason) == (
        "bl.spamcop.net", "127.0.0.2", "spam trap hits"
    )  # fmt: skip
    to = {address for message in mail.outbox for address in message.to}
    assert {"owner@acme.test", "noc@penguinmails.test"} <= to
    assert "outsider@globex.test" not in to
    owner_mail = next(m for m in mail.outbox if "owner@acme.test" in m.to)
    assert "SpamCop (bl.spamcop.net)" in owner_mail.body and "listed since" in owner_mail.body
    assert "https://www.spamcop.net/bl.shtml" in owner_mail.body

    # Checked again while still listed: no second alert, no second listing.
    mail.outbox.clear()
    _check("127.0.0.60", django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert Listing.objects.filter(subject="127.0.0.60").count() == 1


def test_delisting_brings_the_ip_back_to_warming(
    cast: Cast, dnsbl: SandboxDnsServer, django_capture_on_commit_callbacks: Any
) -> None:
    ip = make_ip(cast.tenant, "127.0.0.70")
    stage_blocklisting(dnsbl.store, "127.0.0.70", zone="zen.spamhaus.org")
    _check("127.0.0.70", django_capture_on_commit_callbacks)
    ip.refresh_from_db()
    assert ip.status == IpStatus.QUARANTINED

    stage_blocklisting(dnsbl.store, "127.0.0.70", zone="zen.spamhaus.org", remove=True)
    _check("127.0.0.70", django_capture_on_commit_callbacks)

    ip.refresh_from_db()
    assert ip.status == IpStatus.WARMING
    assert blocklists.current_listings(ip="127.0.0.70") == []
    (old,) = Listing.objects.filter(subject="127.0.0.70")
    assert old.status == "delisted" and old.delisted_at is not None


def test_a_refused_answer_is_not_a_listing(
    cast: Cast, dnsbl: SandboxDnsServer, django_capture_on_commit_callbacks: Any
) -> None:
    ip = make_ip(cast.tenant, "127.0.0.80")
    stage_blocklisting(dnsbl.store, "127.0.0.80", zone="zen.spamhaus.org", answer="127.255.255.254")
    _check("127.0.0.80", django_capture_on_commit_callbacks)
    ip.refresh_from_db()
    assert ip.status == IpStatus.ACTIVE
    assert blocklists.current_listings(ip="127.0.0.80") == []
    check = BlocklistCheck.objects.get(subject="127.0.0.80")
    assert check.verdicts["zen.spamhaus.org"] == "refused"
    assert check.verdicts["bl.spamcop.net"] == "clean"


def test_the_check_command_prints_each_lists_verdict(cast: Cast, dnsbl: SandboxDnsServer) -> None:
    stage_blocklisting(dnsbl.store, "127.0.0.90", zone="psbl.surriel.com")
    out = StringIO()
    call_command("blacklists", "check", "127.0.0.90", stdout=out)
    lines = dict(line.split("\t")[:2] for line in out.getvalue().splitlines())
    assert len(lines) == IP_LISTS
    assert lines["psbl.surriel.com"] == "listed" and lines["zen.spamhaus.org"] == "clean"
    with pytest.raises(CommandError, match="neither an IP address nor a domain"):
        call_command("blacklists", "check", "not a host!", stdout=StringIO())


def test_the_sandbox_command_stages_and_removes(cast: Cast, dnsbl: SandboxDnsServer) -> None:
    call_command(
        "sandbox", "blacklist", "127.0.0.91", "--list", "bl.mailspike.net", stdout=StringIO()
    )
    call_command("sandbox", "blacklist", "spammy.example", stdout=StringIO())
    verdicts = {
        (a.subject, a.zone): a.verdict
        for a in blocklists.check_subjects(["127.0.0.91", "spammy.example"])
    }
    assert verdicts[("127.0.0.91", "bl.mailspike.net")] == "listed"
    assert verdicts[("spammy.example", "dbl.spamhaus.org")] == "listed"
    call_command(
        "sandbox",
        "blacklist",
        "127.0.0.91",
        "--list",
        "bl.mailspike.net",
        "--remove",
        stdout=StringIO(),
    )
    call_command("sandbox", "blacklist", "spammy.example", "--refused", stdout=StringIO())
    verdicts = {
        (a.subject, a.zone): a.verdict
        for a in blocklists.check_subjects(["127.0.0.91", "spammy.example"])
    }
    assert verdicts[("127.0.0.91", "bl.mailspike.net")] == "clean"
    assert verdicts[("spammy.example", "dbl.spamhaus.org")] == "refused"


def test_an_outsider_sees_none_of_anothers_listings(
    cast: Cast, dnsbl: SandboxDnsServer, django_capture_on_commit_callbacks: Any
) -> None:
    make_ip(cast.tenant, "127.0.0.95")
    stage_blocklisting(dnsbl.store, "127.0.0.95", zone="zen.spamhaus.org")
    _check("127.0.0.95", django_capture_on_commit_callbacks)

    mine = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/reputation/listings")
    assert mine.status_code == 200
    assert [x["subject"] for x in mine.json()["results"]] == ["127.0.0.95"]
    theirs = client_for(cast.outsider, cast.other_tenant, api=True).get(
        "/api/v1/reputation/listings"
    )
    assert theirs.status_code == 200 and theirs.json()["results"] == []
    page = client_for(cast.owner, cast.tenant).get("/reputation/listings/")
    assert page.status_code == 200 and b"127.0.0.95" in page.content
    other_page = client_for(cast.outsider, cast.other_tenant).get("/reputation/listings/")
    assert other_page.status_code == 200 and b"127.0.0.95" not in other_page.content
    # The outsider cannot reach acme's host at all.
    assert client_for(cast.outsider, cast.tenant).get("/reputation/listings/").status_code in (
        302,
        403,
        404,
    )


def test_the_commands_refuse_bad_input_and_list_listings(
    cast: Cast, dnsbl: SandboxDnsServer, django_capture_on_commit_callbacks: Any
) -> None:
    with pytest.raises(CommandError, match="not an IP address"):
        call_command("sandbox", "blacklist", "999.1.1.1", stdout=StringIO())
    with pytest.raises(CommandError, match="No tenant"):
        call_command("blacklists", "listings", "--tenant", "nope", stdout=StringIO())
    make_ip(cast.tenant, "127.0.0.99")
    stage_blocklisting(dnsbl.store, "127.0.0.99", zone="bl.mailspike.net")
    _check("127.0.0.99", django_capture_on_commit_callbacks)
    out = StringIO()
    call_command("blacklists", "listings", "--tenant", "acme", stdout=out)
    assert "127.0.0.99\tMailspike (bl.mailspike.net)" in out.getvalue()
    out = StringIO()
    call_command("blacklists", "listings", "--tenant", "globex", stdout=out)
    assert out.getvalue().strip() == "No live listings."
