"""Postfix overrides that make each sending domain's mail leave from the IP it is bound to
(docs/infrastructure.md, "Which IP mail leaves from").

`render_overrides(OutboundPlan(...))` is a pure function from "these IPs, with these PTR names;
these senders, bound to these IPs" to the files Mailu's postfix container reads from its
`/overrides` mount (`/mailu/overrides/postfix` on the host). Mailu 2.x's postfix `start.py`, at
container start:

- runs `postconf -e "<line>"` for each line of `/overrides/postfix.cf` (main.cf settings);
- runs `postconf -Me "<line>"` for each line of `/overrides/postfix.master` (master.cf entries,
  one logical line each, `name/type = name type private unpriv chroot wakeup maxproc command`);
- copies `/overrides/*.map` to /etc/postfix and `postmap`s them.

Both `postconf` calls go through a shell inside double quotes, and older Mailu releases pass
comment lines on too: postfix.cf and postfix.master therefore hold no comments and no `$`, `"`,
backquote or backslash (every value is validated, not escaped). The sender map is a `texthash:`
table read straight from the mount (no `.map` suffix, so Mailu does not postmap it into a
database type that differs between Debian and Alpine builds).

The map sends `@domain` (or one full address) to a transport `pm_<address>`; each transport is
Postfix's `smtp` client with `-o smtp_bind_address=IP` (`smtp_bind_address6` and
`smtp_address_preference=ipv6` for an IPv6 address) and `-o smtp_helo_name=<the IP's PTR>`, so the
HELO name forward-confirms against the reverse DNS provisioning set.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

# The job that re-renders a tenant's servers' files (infrastructure/jobs.py).
RENDER_TASK = "infra.postfix.render"
# Where the files land on the server (the postfix container's /overrides mount).
OVERRIDES_DIR = "/mailu/overrides/postfix"
# Inside the container.
CONTAINER_DIR = "/overrides"
MAIN_FILE = "postfix.cf"
MASTER_FILE = "postfix.master"
SENDER_MAP_FILE = "sender_transport.texthash"

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+")
_LOCAL_PART = re.compile(r"[a-z0-9!#%&'*+/=?^_{|}~.-]{1,64}")


class PostfixConfigError(ValueError):
    """A value that cannot go into the generated Postfix configuration; the message says which."""


@dataclass(frozen=True)
class OutboundIp:
    """One address mail may leave from, with the name its PTR carries (the HELO name)."""

    address: str
    helo_name: str

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version

    @property
    def transport(self) -> str:
        """The master.cf service name: stable per address, letters, digits and underscores."""
        return "pm_" + re.sub(r"[^0-9a-f]", "_", ipaddress.ip_address(self.address).exploded)


@dataclass(frozen=True)
class OutboundPlan:
    """One server's bindings: its IPs, and sender (`@domain` or `user@domain`) -> address."""

    ips: tuple[OutboundIp, ...]
    senders: dict[str, str] = field(default_factory=dict)


def _check_ip(ip: OutboundIp) -> None:
    try:
        parsed = ipaddress.ip_address(ip.address)
    except ValueError:
        raise PostfixConfigError(f"{ip.address!r} is not an IP address.") from None
    if str(parsed) != ip.address:
        raise PostfixConfigError(f"{ip.address!r} is not in canonical form ({parsed}).")
    if not _HOSTNAME.fullmatch(ip.helo_name):
        raise PostfixConfigError(f"HELO name {ip.helo_name!r} for {ip.address} is not a host name.")


def check_sender(sender: str) -> None:
    local, at, domain = sender.rpartition("@")
    if not at or not _HOSTNAME.fullmatch(domain) or (local and not _LOCAL_PART.fullmatch(local)):
        raise PostfixConfigError(f"{sender!r} is neither @domain nor a plain user@domain.")


def validated(plan: OutboundPlan) -> OutboundPlan:
    """The plan, after checking every value; raises PostfixConfigError naming the first bad one."""
    seen: set[str] = set()
    for ip in plan.ips:
        _check_ip(ip)
        if ip.address in seen:
            raise PostfixConfigError(f"{ip.address} is listed twice.")
        seen.add(ip.address)
    for sender, address in plan.senders.items():
        check_sender(sender)
        if address not in seen:
            raise PostfixConfigError(f"{sender} is bound to {address}, not one of this server's.")
    return plan


def master_entry(ip: OutboundIp) -> str:
    """The postfix.master line of one IP's transport (a `postconf -Me` argument)."""
    options = [f"smtp_helo_name={ip.helo_name}"]
    if ip.version == 6:
        options += [f"smtp_bind_address6={ip.address}", "smtp_address_preference=ipv6"]
    else:
        options.append(f"smtp_bind_address={ip.address}")
    # private -, unpriv -, chroot n (Mailu runs postfix unchrooted), wakeup -, maxproc -.
    args = " ".join(f"-o {option}" for option in options)
    return f"{ip.transport}/unix = {ip.transport} unix - - n - - smtp {args}"


def render_overrides(plan: OutboundPlan) -> dict[str, str]:
    """File name (in OVERRIDES_DIR) -> content. Always the same three files, so a server whose
    bindings were all removed is overwritten with empty ones rather than keeping stale entries."""
    validated(plan)
    by_address = {ip.address: ip for ip in plan.ips}
    map_lines = [
        "# Written by PenguinMails (infrastructure/postfix.py); regenerated on every change.",
        "# sender (@domain or user@domain) -> transport: the IP the sender's mail leaves from.",
    ]
    for sender in sorted(plan.senders):
        map_lines.append(f"{sender} {by_address[plan.senders[sender]].transport}:")
    main_lines = [
        f"sender_dependent_default_transport_maps = texthash:{CONTAINER_DIR}/{SENDER_MAP_FILE}",
    ]
    master_lines = [master_entry(ip) for ip in sorted(plan.ips, key=lambda i: i.transport)]
    files = {
        MAIN_FILE: "\n".join(main_lines) + "\n",
        MASTER_FILE: "\n".join(master_lines) + "\n" if master_lines else "",
        SENDER_MAP_FILE: "\n".join(map_lines) + "\n",
    }
    for name in (MAIN_FILE, MASTER_FILE):
        if any(ch in files[name] for ch in '$"`\\'):  # belt and braces: see the module docstring
            raise PostfixConfigError(f"{name} would hold a character a shell interprets.")
    return files


def digest(files: dict[str, str]) -> str:
    """A short fingerprint of a set of files (shown to staff; changes when any file does)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()[:16]
