"""The firewall of every mail server: an nftables ruleset that cloud-init installs.

Open to the world: mail (25 SMTP, 465 submissions, 587 submission), web (80, 443: Let's Encrypt
and Mailu's API) and IMAP (993 IMAPS, 143 IMAP with STARTTLS). SSH (22) and node_exporter (9100)
only from the staff networks (STAFF_NETWORKS: staff and the control plane's egress addresses,
which reads the exporter). Everything else arriving at the host is dropped.

The ruleset filters traffic to the host (the `input` hook). Mailu's ports reach its containers
through Docker's DNAT and the `forward` hook, which this table does not touch: the ports Mailu
publishes are therefore limited to the same list (cloudinit.MAILU_PORTS), so POP3 (110, 995)
and ManageSieve (4190) are not reachable at all. The table is ours alone (`inet penguinmails`),
replaced as a whole on each load (declare, delete, define), never `flush ruleset`, which would
also wipe the NAT rules Docker keeps in its own tables.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

TABLE = "penguinmails"
NFTABLES_PATH = "/etc/nftables.conf"
SSH_PORT = 22
NODE_EXPORTER_PORT = 9100
MAIL_PORTS = (25, 465, 587)
WEB_PORTS = (80, 443)
IMAP_PORTS = (143, 993)
# The ports open to the world, in the order Mailu's compose template lists them.
PUBLIC_PORTS = (*WEB_PORTS, *MAIL_PORTS, *IMAP_PORTS)
STAFF_PORTS = (SSH_PORT, NODE_EXPORTER_PORT)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FirewallError(ValueError):
    """A staff network that is not a CIDR; the message names it."""


def parse_networks(values: Iterable[str]) -> list[Network]:
    """STAFF_NETWORKS as networks: each a CIDR (or a single address), host bits clear, not the
    whole Internet (0.0.0.0/0 or ::/0 would open SSH to everyone)."""
    networks: list[Network] = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise FirewallError(f"STAFF_NETWORKS: {text!r} is not a network ({exc}).") from None
        if network.prefixlen == 0:
            raise FirewallError(
                f"STAFF_NETWORKS: {text!r} is the whole Internet; SSH must stay closed to it."
            )
        if network not in networks:
            networks.append(network)
    return networks


def _set(items: Iterable[object]) -> str:
    return "{ " + ", ".join(str(i) for i in items) + " }"


def ruleset(staff_networks: Iterable[str]) -> str:
    """The nftables file (`nft -f`): loads the same at boot and when run again."""
    networks = parse_networks(staff_networks)
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    staff_rules = []
    if v4:
        staff_rules.append(f"    ip saddr {_set(v4)} tcp dport {_set(STAFF_PORTS)} accept")
    if v6:
        staff_rules.append(f"    ip6 saddr {_set(v6)} tcp dport {_set(STAFF_PORTS)} accept")
    if not networks:
        staff_rules.append("    # STAFF_NETWORKS is empty: SSH and node_exporter are closed.")
    lines = [
        "#!/usr/sbin/nft -f",
        "# Written by PenguinMails provisioning (infrastructure/firewall.py).",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
        "    iif lo accept",
        "    ct state established,related accept",
        "    ct state invalid drop",
        # Path MTU discovery and ping; IPv6 cannot work without neighbour discovery.
        "    meta l4proto icmp accept",
        "    meta l4proto ipv6-icmp accept",
        # DHCP lease renewals (the provider's network hands out the address).
        "    udp dport 68 accept",
        "    udp dport 546 accept",
        f"    tcp dport {_set(PUBLIC_PORTS)} accept",
        *staff_rules,
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"
