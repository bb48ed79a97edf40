"""Mail leaves from the IP it is assigned to: a tenant with two IPs and three domains gets one
transport per IP (bind address, HELO = the IP's PTR), every domain mapped to one of them; the
map is stable, follows removals, quarantines and the emergency migration; cloud-init carries
the files; nothing of another tenant shows. The generated files are checked with Postfix's own
`postconf` and `postmap` when available (tests/ip_binding/postfix_tools.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from infrastructure.models import (
    IpAddress,
    IpStatus,
    PostfixOverrides,
    SenderIpBinding,
    VpsInstance,
)
from infrastructure.postfix import OutboundIp, OutboundPlan, PostfixConfigError, render_overrides
from infrastructure.providers.local import LocalProvider
from infrastructure.services.ip_binding import bind_sender
from infrastructure.services.ips import migrate_ip, quarantine_ip
from infrastructure.services.provisioning import user_data_for
from penguinmails.errors import NotFound, ValidationFailed
from tenants.models import User
from tests.conftest import PASSWORD, Cast, client_for
from tests.ip_binding.conftest import add_domains, drop_domain, render, two_ip_server

pytestmark = pytest.mark.django_db(transaction=True)

DOMAINS = ("alpha-ipb.example", "bravo-ipb.example", "charlie-ipb.example")
_MAP_LINE = re.compile(r"^(\S+) (pm_[0-9a-f_]+):$")
_MASTER = re.compile(r"^(pm_[0-9a-f_]+)/unix = \1 unix - - n - - smtp((?: -o \S+=\S+)+)$")


def parse(files: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(sender -> transport, transport -> its -o options), strictly: any other line fails."""
    senders = {}
    for line in files["sender_transport.texthash"].splitlines():
        if line.startswith("#"):
            continue
        match = _MAP_LINE.fullmatch(line)
        assert match, line
        senders[match[1]] = match[2]
    transports = {}
    for line in files["postfix.master"].splitlines():
        match = _MASTER.fullmatch(line)
        assert match, line
        options = dict(o.split("=", 1) for o in match[2].split(" -o ")[1:])
        transports[match[1]] = options
    assert files["postfix.cf"] == (
        "sender_dependent_default_transport_maps = texthash:/overrides/sender_transport.texthash\n"
    )
    return senders, transports


def bound_addresses(files: dict[str, str]) -> dict[str, str]:
    """sender -> the address its mail is bound to."""
    senders, transports = parse(files)
    return {s: transports[t]["smtp_bind_address"] for s, t in senders.items()}


def _server(cast: Cast) -> tuple[VpsInstance, list[IpAddress]]:
    vps = two_ip_server(cast.tenant, actor=cast.owner)
    ips = list(IpAddress.objects.filter(vps=vps).order_by("-is_primary", "id"))
    return vps, ips


def test_it_binds_three_domains_over_two_ips_with_the_ptr_as_helo(
    cast: Cast, quick_dns: LocalProvider
) -> None:
    vps, ips = _server(cast)
    add_domains(cast, *DOMAINS)
    files = render(vps)

    senders, transports = parse(files)
    assert set(senders) == {f"@{d}" for d in DOMAINS}
    by_address = {ip.address: ip for ip in ips}
    assert {t["smtp_bind_address"] for t in transports.values()} == set(by_address)
    for options in transports.values():
        ip = by_address[options["smtp_bind_address"]]
        # HELO names the host the IP's PTR points to, as provisioning set it at the provider.
        assert options["smtp_helo_name"] == ip.ptr_hostname == vps.hostname
        assert quick_dns.reverse_dns(ip.address) == options["smtp_helo_name"]  # type: ignore[arg-type]
    # Round-robin: two domains on one IP, one on the other.
    assert sorted(Counter(bound_addresses(files).values()).values()) == [1, 2]


def test_it_keeps_domains_where_they_are_and_drops_removed_ones(
    cast: Cast, quick_dns: LocalProvider
) -> None:
    vps, ips = _server(cast)
    add_domains(cast, *DOMAINS)
    before = bound_addresses(render(vps))

    add_domains(cast, "delta-ipb.example")
    after = bound_addresses(render(vps))
    assert {s: a for s, a in after.items() if s != "@delta-ipb.example"} == before
    assert sorted(Counter(after.values()).values()) == [2, 2]  # the new one went to the lighter IP

    drop_domain(cast, "alpha-ipb.example")
    assert "@alpha-ipb.example" not in bound_addresses(render(vps))


def test_the_emergency_migration_remaps_every_sender_of_the_bad_ip(
    cast: Cast, quick_dns: LocalProvider
) -> None:
    # Three IPs, so "moved to the replacement" differs from "re-spread over what is left".
    vps = two_ip_server(cast.tenant, actor=cast.owner, ips=3)
    main, bad, clean = IpAddress.objects.filter(vps=vps).order_by("-is_primary", "id")
    add_domains(cast, *DOMAINS)
    render(vps)  # one domain per IP
    bind_sender(cast.tenant, sender="anna@alpha-ipb.example", ip=bad, actor=cast.owner)
    before = bound_addresses(render(vps))
    on_bad = {s for s, a in before.items() if a == bad.address}
    assert "anna@alpha-ipb.example" in on_bad and len(on_bad) == 2

    migrate_ip(bad, clean, actor=cast.owner)
    files = render(vps)
    after = bound_addresses(files)
    assert {s: after[s] for s in on_bad} == {s: clean.address for s in on_bad}
    assert {s: a for s, a in after.items() if s not in on_bad} == {
        s: a for s, a in before.items() if s not in on_bad
    }
    # The quarantined IP has no transport any more: nothing can leave from it.
    assert bad.address not in files["postfix.master"]


def test_a_quarantined_ip_s_domains_move_to_the_clean_one(
    cast: Cast, quick_dns: LocalProvider
) -> None:
    vps, (main, secondary) = _server(cast)
    add_domains(cast, *DOMAINS)
    render(vps)
    quarantine_ip(secondary, reason="listed on a test blocklist", actor=cast.owner)
    assert set(bound_addresses(render(vps)).values()) == {main.address}
    assert IpAddress.objects.get(pk=secondary.pk).status == IpStatus.QUARANTINED


def test_cloud_init_writes_the_rendered_files(cast: Cast, quick_dns: LocalProvider) -> None:
    vps, _ = _server(cast)
    add_domains(cast, *DOMAINS)
    files = render(vps)
    document = json.loads(user_data_for(vps).removeprefix("#cloud-config\n"))
    written = {
        f["path"].removeprefix("/mailu/overrides/postfix/"): f["content"]
        for f in document["write_files"]
        if f["path"].startswith("/mailu/overrides/postfix/")
    }
    assert written == files


def test_pinning_refuses_another_tenants_ip_and_a_bad_sender(
    cast: Cast, quick_dns: LocalProvider
) -> None:
    vps, (main, _) = _server(cast)
    add_domains(cast, DOMAINS[0])
    with pytest.raises(NotFound):
        bind_sender(cast.other_tenant, sender="@evil-ipb.example", ip=main, actor=cast.outsider)
    with pytest.raises(ValidationFailed):
        bind_sender(cast.tenant, sender='x"; rm -rf /@a.example', ip=main, actor=cast.owner)
    assert not SenderIpBinding.objects.filter(tenant=cast.other_tenant).exists()
    assert set(bound_addresses(render(vps))) == {f"@{DOMAINS[0]}"}


def test_ipv6_gets_bind_address6_and_the_renderer_refuses_bad_values() -> None:
    plan = OutboundPlan(
        ips=(
            OutboundIp("203.0.113.7", "mail1.t.example"),
            OutboundIp("2001:db8::7", "mail1.t.example"),
        ),
        senders={"@a.example": "2001:db8::7", "@b.example": "203.0.113.7"},
    )
    senders, transports = parse(render_overrides(plan))
    v6 = transports[senders["@a.example"]]
    assert v6 == {
        "smtp_helo_name": "mail1.t.example",
        "smtp_bind_address6": "2001:db8::7",
        "smtp_address_preference": "ipv6",
    }
    assert transports[senders["@b.example"]]["smtp_bind_address"] == "203.0.113.7"
    for bad in (
        OutboundPlan(ips=(OutboundIp("203.0.113.7", "bad host"),)),
        OutboundPlan(ips=(OutboundIp("2001:DB8::7", "m.example"),)),  # not canonical
        OutboundPlan(
            ips=(OutboundIp("203.0.113.7", "m.example"),), senders={"@c.example": "198.51.100.1"}
        ),
        OutboundPlan(
            ips=(OutboundIp("203.0.113.7", "m.example"),), senders={"$x@c.example": "203.0.113.7"}
        ),
    ):
        with pytest.raises(PostfixConfigError):
            render_overrides(bad)


def test_staff_see_the_stored_files_and_bindings_read_only(
    cast: Cast, quick_dns: LocalProvider
) -> None:
    vps, _ = _server(cast)
    add_domains(cast, *DOMAINS)
    files = render(vps)
    staff = User.objects.create_superuser("staff-ipb@penguinmails.example.com", PASSWORD)
    client = client_for(staff, None)
    row = PostfixOverrides.objects.get(vps=vps)
    page = client.get(f"/admin/infrastructure/postfixoverrides/{row.pk}/change/")
    assert page.status_code == 200
    assert files["postfix.master"].split()[0].split("/")[0] in page.content.decode()
    listing = client.get("/admin/infrastructure/senderipbinding/")
    assert listing.status_code == 200 and f"@{DOMAINS[0]}" in listing.content.decode()
    # Read only: no way to change the rows by hand, and never from a tenant's member.
    assert (
        client.post(f"/admin/infrastructure/postfixoverrides/{row.pk}/delete/").status_code == 403
    )
    assert (
        client_for(cast.owner, None).get("/admin/infrastructure/senderipbinding/").status_code
        == 302
    )


def test_the_command_pins_a_mailbox_and_writes_the_files_for_staff(
    cast: Cast, quick_dns: LocalProvider, tmp_path: Path
) -> None:
    vps, (_, secondary) = _server(cast)
    add_domains(cast, *DOMAINS)
    call_command("infra", "postfix", "bind", "bob@bravo-ipb.example", "--ip", secondary.address)
    files = render(vps)
    assert bound_addresses(files)["bob@bravo-ipb.example"] == secondary.address
    target = tmp_path / "overrides"
    call_command("infra", "postfix", "show", vps.name, "--dir", str(target))
    assert {p.name: p.read_text() for p in target.iterdir()} == files
    out = StringIO()
    call_command("infra", "postfix", "show", vps.name, stdout=out)
    assert files["postfix.master"] in out.getvalue()
    with pytest.raises(CommandError, match="No rendered Postfix overrides"):
        call_command("infra", "postfix", "show", "pm-nonexistent-9")
    with pytest.raises(CommandError):
        call_command("infra", "postfix", "bind", "@x.example", "--ip", "198.51.100.250")
