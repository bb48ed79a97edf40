"""The generated files as Postfix itself reads them: applied to a config dir the way Mailu's
start.py applies them (`postconf -e`, `postconf -Me`), then read back with `postconf -n`,
`postconf -M`, `postconf -P` and looked up with `postmap -q` on the texthash table."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.models import IpAddress
from infrastructure.postfix import OutboundIp, OutboundPlan, render_overrides
from infrastructure.providers.local import LocalProvider
from tests.conftest import Cast
from tests.ip_binding.conftest import add_domains, apply_like_mailu, render, two_ip_server
from tests.ip_binding.postfix_tools import PostfixTools

DOMAINS = ("alpha-pft.example", "bravo-pft.example", "charlie-pft.example")


def _params(tools: PostfixTools, config: Path) -> dict[str, str]:
    out = tools.run("postconf", "-c", str(config), "-P").stdout
    return dict(line.split(" = ", 1) for line in out.splitlines())


def _lookup(tools: PostfixTools, config: Path, table: Path, key: str) -> str | None:
    done = tools.run("postmap", "-c", str(config), "-q", key, f"texthash:{table}", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.mark.django_db(transaction=True)
def test_postfix_reads_the_binding_of_every_domain(
    cast: Cast, quick_dns: LocalProvider, postfix: PostfixTools, tmp_path: Path
) -> None:
    vps = two_ip_server(cast.tenant, actor=cast.owner)
    add_domains(cast, *DOMAINS)
    config = apply_like_mailu(postfix, render(vps), tmp_path)

    table = tmp_path / "overrides" / "sender_transport.texthash"
    main = postfix.run("postconf", "-c", str(config), "-n").stdout
    assert f"sender_dependent_default_transport_maps = texthash:{table}" in main
    params = _params(postfix, config)
    ptr = {ip.address: ip.ptr_hostname for ip in IpAddress.objects.filter(vps=vps)}
    used = set()
    for domain in DOMAINS:
        transport = _lookup(postfix, config, table, f"@{domain}")
        assert transport is not None and transport.endswith(":")
        name = transport[:-1]
        # The transport exists in master.cf as Postfix's smtp client...
        entry = postfix.run("postconf", "-c", str(config), "-M", f"{name}/unix").stdout.split()
        assert entry[:2] == [name, "unix"] and entry[7] == "smtp"
        # ...bound to one of the tenant's IPs, saying that IP's PTR name in HELO.
        address = params[f"{name}/unix/smtp_bind_address"]
        assert address in ptr
        assert params[f"{name}/unix/smtp_helo_name"] == ptr[address]
        used.add(address)
    assert used == set(ptr)  # both IPs carry mail
    assert _lookup(postfix, config, table, "@not-ours.example") is None


def test_postfix_accepts_an_ipv6_transport(postfix: PostfixTools, tmp_path: Path) -> None:
    plan = OutboundPlan(
        ips=(OutboundIp("2001:db8::25", "mail1.v6.example"),),
        senders={"@v6.example": "2001:db8::25"},
    )
    config = apply_like_mailu(postfix, render_overrides(plan), tmp_path)
    params = _params(postfix, config)
    (name,) = {key.split("/")[0] for key in params if key.startswith("pm_")}
    assert params[f"{name}/unix/smtp_bind_address6"] == "2001:db8::25"
    assert params[f"{name}/unix/smtp_address_preference"] == "ipv6"
    assert params[f"{name}/unix/smtp_helo_name"] == "mail1.v6.example"
    table = tmp_path / "overrides" / "sender_transport.texthash"
    assert _lookup(postfix, config, table, "@v6.example") == f"{name}:"
