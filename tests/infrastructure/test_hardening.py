"""Cloud-init's hardening, parsed back: the nftables firewall (checked by nft itself when it is
installed, and loaded into a scratch network namespace when that is allowed), node_exporter,
the ports Mailu publishes, and Mailu's antivirus on plans whose server has the memory for it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from infrastructure.cloudinit import ConfigError, build_user_data, compose, mailu_env
from infrastructure.firewall import NFTABLES_PATH, FirewallError, parse_networks, ruleset
from infrastructure.providers import LocalProvider
from infrastructure.services.provisioning import provision_infrastructure, user_data_for
from tests.conftest import Cast
from tests.infra_lifecycle.conftest import set_plan
from tests.infrastructure.test_cloudinit import CONFIG, parse, parse_env, written

STAFF = ("198.51.100.0/24", "203.0.113.9", "2001:db8:42::/48")
HARDENED = replace(CONFIG, staff_networks=STAFF)


def _nft(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nft", *args], input=stdin, capture_output=True, text=True, timeout=20, check=False
    )


def _nft_checks() -> bool:
    """nft is installed and may check a ruleset here (it needs CAP_NET_ADMIN even for -c)."""
    if shutil.which("nft") is None:
        return False
    return _nft("-c", "-f", "-", stdin="table inet pm_probe {}\n").returncode == 0


def firewall_of(user_data: str) -> str:
    content = written(parse(user_data), NFTABLES_PATH)["content"]
    assert isinstance(content, str)
    return content


def rule_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_the_firewall_opens_mail_web_and_imap_to_all_and_ssh_and_exporter_to_staff() -> None:
    lines = rule_lines(firewall_of(build_user_data(HARDENED)))
    assert "type filter hook input priority filter; policy drop;" in lines
    assert "tcp dport { 80, 443, 25, 465, 587, 143, 993 } accept" in lines
    assert "ip saddr { 198.51.100.0/24, 203.0.113.9/32 } tcp dport { 22, 9100 } accept" in lines
    assert "ip6 saddr { 2001:db8:42::/48 } tcp dport { 22, 9100 } accept" in lines
    # Neither SSH nor the exporter appears in any rule without a source address.
    for line in lines:
        if "dport" in line and ("22" in line.split("dport")[1] or "9100" in line):
            assert "saddr" in line, line
    # POP3 and ManageSieve are nowhere open.
    assert not any(p in " ".join(lines) for p in ("110", "995", "4190"))


def test_without_staff_networks_ssh_and_the_exporter_are_closed() -> None:
    lines = rule_lines(firewall_of(build_user_data(CONFIG)))
    assert not any("saddr" in line for line in lines)
    assert not any("22," in line or "9100" in line for line in lines if "accept" in line)


@pytest.mark.parametrize(
    "bad", ["10.0.0.1/8", "not-a-network", "0.0.0.0/0", "::/0", "300.1.2.3/32", "10.0.0.0/33"]
)
def test_bad_staff_networks_are_refused_naming_the_value(bad: str) -> None:
    with pytest.raises(FirewallError, match="STAFF_NETWORKS"):
        parse_networks(["192.0.2.0/24", bad])
    with pytest.raises(ConfigError, match="STAFF_NETWORKS"):
        build_user_data(replace(CONFIG, staff_networks=("192.0.2.0/24", bad)))


def test_the_firewall_is_loaded_before_mailu_starts_and_kept_across_boots() -> None:
    document = parse(build_user_data(HARDENED))
    assert {"nftables", "prometheus-node-exporter"} <= set(document["packages"])
    commands = [" ".join(cmd) for cmd in document["runcmd"]]
    load = commands.index(f"nft -f {NFTABLES_PATH}")
    assert "systemctl enable nftables" in commands
    assert "systemctl enable --now prometheus-node-exporter" in commands
    compose_up = next(i for i, c in enumerate(commands) if c.startswith("docker compose"))
    assert load < compose_up
    # Its own table, replaced as a whole: never `flush ruleset`, which would drop Docker's NAT.
    text = firewall_of(build_user_data(HARDENED))
    assert "flush ruleset" not in text
    assert rule_lines(text)[2:4] == ["table inet penguinmails", "delete table inet penguinmails"]


def test_mailu_publishes_only_the_ports_the_firewall_opens() -> None:
    ports = compose(HARDENED)["services"]["front"]["ports"]
    assert sorted(int(p.split(":")[0]) for p in ports) == [25, 80, 143, 443, 465, 587, 993]


@pytest.mark.skipif(not _nft_checks(), reason="nft is not installed or may not check here")
def test_nft_accepts_the_generated_ruleset(tmp_path: Path) -> None:
    for networks in (STAFF, ()):
        path = tmp_path / "rules.nft"
        path.write_text(firewall_of(build_user_data(replace(CONFIG, staff_networks=networks))))
        result = _nft("-c", "-f", str(path))
        assert result.returncode == 0, result.stderr


def _can_unshare() -> bool:
    if not _nft_checks() or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="no network namespace for nft here")
def test_the_ruleset_loads_twice_in_a_fresh_namespace_and_holds_the_rules(tmp_path: Path) -> None:
    """Loaded as cloud-init and then nftables.service load it (twice), then listed back as
    JSON by the kernel: one table, a drop policy, the public and the staff rules."""
    path = tmp_path / "rules.nft"
    path.write_text(ruleset(STAFF))
    script = f"nft -f {path} && nft -f {path} && nft -j list ruleset"
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["nftables"]
    tables = [i["table"]["name"] for i in items if "table" in i]
    assert tables == ["penguinmails"]
    [chain] = [i["chain"] for i in items if "chain" in i]
    assert (chain["hook"], chain["policy"]) == ("input", "drop")
    rules = [i["rule"]["expr"] for i in items if "rule" in i]
    by_ports: dict[tuple[int, ...], list[Any]] = {}
    for expr in rules:
        for m in expr:
            if "match" in m and m["match"]["left"].get("payload", {}).get("field") == "dport":
                right = m["match"]["right"]
                ports = right["set"] if isinstance(right, dict) else [right]
                by_ports.setdefault(tuple(sorted(ports)), []).append(expr)
    [public] = by_ports[(25, 80, 143, 443, 465, 587, 993)]
    assert "saddr" not in json.dumps(public)
    staff = by_ports[(22, 9100)]
    assert len(staff) == 2 and all("saddr" in json.dumps(e) for e in staff)
    assert not any(p in ports for ports in by_ports for p in (110, 995, 4190))


# --- antivirus by plan ---------------------------------------------------------------------------


def test_antivirus_runs_only_when_the_config_says_so() -> None:
    assert mailu_env(CONFIG)["ANTIVIRUS"] == "none"
    assert "antivirus" not in compose(CONFIG)["services"]
    with_av = replace(CONFIG, antivirus=True)
    assert mailu_env(with_av)["ANTIVIRUS"] == "clamav"
    services = compose(with_av)["services"]
    assert services["antivirus"]["image"].startswith("clamav/clamav-debian:")
    assert "/mailu/filter/clamav:/var/lib/clamav" in services["antivirus"]["volumes"]
    assert "antivirus" in services["antispam"]["depends_on"]


@pytest.fixture
def local_servers(tmp_path: Path, settings: Any) -> None:
    settings.VPS_PROVIDER = "local"
    settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
    settings.STAFF_NETWORKS = ["198.51.100.0/24"]
    settings.VPS_MEMORY_MB = {"small": "2048", "medium": "4096", "large": "16384"}
    settings.ANTIVIRUS_MIN_MEMORY_MB = 3072
    LocalProvider(settings.LOCAL_VPS_STATE_FILE)


@pytest.mark.django_db
@pytest.mark.parametrize(("plan", "antivirus"), [("growth", "none"), ("scale", "clamav")])
def test_a_plans_servers_get_antivirus_when_their_size_has_the_memory(
    cast: Cast, local_servers: None, plan: str, antivirus: str
) -> None:
    """Growth's small (2 GB) servers run without ClamAV, Scale's medium (4 GB) ones with it;
    both get the staff networks in their firewall."""
    set_plan(cast.tenant, plan)
    servers = provision_infrastructure(cast.tenant, actor=None)
    assert servers
    for vps in servers:
        document = parse(user_data_for(vps))
        env = parse_env(written(document, "/mailu/mailu.env")["content"])
        assert env["ANTIVIRUS"] == antivirus
        services = json.loads(written(document, "/mailu/docker-compose.yml")["content"])
        assert ("antivirus" in services["services"]) is (antivirus == "clamav")
        assert "ip saddr { 198.51.100.0/24 }" in written(document, NFTABLES_PATH)["content"]


@pytest.mark.django_db
def test_the_memory_floor_is_a_setting(cast: Cast, local_servers: None, settings: Any) -> None:
    settings.ANTIVIRUS_MIN_MEMORY_MB = 2048
    set_plan(cast.tenant, "growth")
    [vps] = provision_infrastructure(cast.tenant, actor=None)
    env = parse_env(written(parse(user_data_for(vps)), "/mailu/mailu.env")["content"])
    assert env["ANTIVIRUS"] == "clamav"


def test_bad_settings_fail_the_system_checks(settings: Any) -> None:
    from django.core.management.base import SystemCheckError

    settings.STAFF_NETWORKS = ["10.0.0.0/8", "10.1.2.3/8"]
    with pytest.raises(SystemCheckError, match="STAFF_NETWORKS"):
        call_command("check")
    settings.STAFF_NETWORKS = []
    settings.VPS_MEMORY_MB = {"small": "two gigs"}
    with pytest.raises(SystemCheckError, match="VPS_MEMORY_MB"):
        call_command("check")


def test_real_servers_without_staff_networks_are_warned_about(settings: Any) -> None:
    from django.core.checks import run_checks

    settings.VPS_PROVIDER, settings.STAFF_NETWORKS = "hostwinds", []
    assert "infrastructure.W001" in {m.id for m in run_checks()}
    settings.STAFF_NETWORKS = ["198.51.100.0/24"]
    assert "infrastructure.W001" not in {m.id for m in run_checks()}
    settings.VPS_PROVIDER, settings.STAFF_NETWORKS = "local", []
    assert "infrastructure.W001" not in {m.id for m in run_checks()}


# --- the firewall at work: packets between two network namespaces -----------------------------

PROBED = (22, 25, 80, 110, 143, 443, 465, 587, 993, 995, 4190, 9100)
LISTEN = """
import socket, sys, time
socks = []
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in {ports}:
        s = socket.socket(family)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen()
        socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"""
PROBE = """
import json, socket, sys
out = {{}}
for src, dst, family in {pairs}:
    for port in {ports}:
        s = socket.socket(family)
        s.settimeout(0.4)
        s.bind((src, 0))
        try:
            s.connect((dst, port))
            out[f"{{src}} {{port}}"] = True
        except OSError:
            out[f"{{src}} {{port}}"] = False
        s.close()
print(json.dumps(out))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def _can_make_namespaces() -> bool:
    if not _nft_checks() or shutil.which("ip") is None:
        return False
    name = f"pmfw-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=10)
    if made.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    return True


@pytest.mark.skipif(not _can_make_namespaces(), reason="cannot create network namespaces here")
def test_packets_from_outside_reach_only_mail_web_and_imap_and_staff_also_ssh_and_exporter(
    tmp_path: Path,
) -> None:
    """A server namespace with the generated firewall and listeners on every port Mailu and the
    host could offer; a client namespace connects from a staff address and from another one,
    over IPv4 and IPv6."""
    tag = f"{os.getpid() % 100000}{secrets.randbelow(1000)}"
    server, client = f"pmfw-s{tag}", f"pmfw-c{tag}"
    rules = tmp_path / "rules.nft"
    rules.write_text(ruleset(["10.77.0.2/32", "fd77::2/128"]))
    _ip("netns", "add", server)
    try:
        _ip("netns", "add", client)
        _ip("link", "add", f"v0{tag}", "netns", server, "type", "veth", "peer", "name",
            f"v1{tag}", "netns", client)  # fmt: skip
        for ns, dev, addrs in (
            (server, f"v0{tag}", ("10.77.0.1/24", "fd77::1/64")),
            (client, f"v1{tag}", ("10.77.0.2/24", "10.77.0.3/24", "fd77::2/64", "fd77::3/64")),
        ):
            for addr in addrs:
                _ip("-n", ns, "addr", "add", addr, "dev", dev, *(["nodad"] if ":" in addr else []))
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("netns", "exec", server, "nft", "-f", str(rules))
        listener = subprocess.Popen(
            ["ip", "netns", "exec", server, sys.executable, "-c", LISTEN.format(ports=PROBED)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
            pairs = [
                (src, "10.77.0.1", int(socket.AF_INET)) for src in ("10.77.0.2", "10.77.0.3")
            ] + [(src, "fd77::1", int(socket.AF_INET6)) for src in ("fd77::2", "fd77::3")]
            probe = subprocess.run(
                ["ip", "netns", "exec", client, sys.executable, "-c",
                 PROBE.format(pairs=pairs, ports=PROBED)],
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
        finally:
            listener.communicate("", timeout=10)
    finally:
        for ns in (server, client):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
    reached = json.loads(probe.stdout)
    public = {25, 80, 143, 443, 465, 587, 993}
    for src, staff in (("10.77.0.2", True), ("10.77.0.3", False), ("fd77::2", True),
                       ("fd77::3", False)):  # fmt: skip
        opened = {port for port in PROBED if reached[f"{src} {port}"]}
        assert opened == (public | {22, 9100} if staff else public), (src, sorted(opened))
