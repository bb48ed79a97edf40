"""The platform's own names in the sandbox zone (`make run`, docs/dns.md "The sandbox DNS
server").

A tenant's records point at names the platform owns: the PTR of each sending IP at the mail
host (which must resolve back to the IP: forward-confirmed rDNS), `include:` the platform's SPF
name while the tenant has no IPs, and the tracking host's CNAME at the platform's tracking
target. In production those live in the platform's zone; the sandbox is the whole DNS, so they
are published here too, or PTR, SPF and the tracking host could never verify offline.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from deliverability.dns.records import normalize_name
from infrastructure.models import IP_SENDING, IpAddress, IpRole
from penguinmails.sandbox.dns import ZoneRecord, ZoneStore

# Everything the sandbox serves runs on this machine: the web server answers tracking requests.
LOOPBACK = "127.0.0.1"


def platform_records(*, sending_ips: Sequence[str]) -> list[ZoneRecord]:
    """A for the mail host (every sending IP), the SPF include (TXT listing them) and A for the
    tracking target (loopback). With no IP yet, loopback stands in for them."""
    ips = list(dict.fromkeys(sending_ips)) or [LOOPBACK]
    spf = " ".join(["v=spf1", *(f"ip4:{ip}" for ip in ips), "~all"])
    return [
        *(ZoneRecord.make(settings.SENDING_MAIL_HOST, "A", ip) for ip in ips),
        ZoneRecord.make(settings.SENDING_SPF_INCLUDE, "TXT", spf),
        ZoneRecord.make(settings.TRACKING_CNAME_TARGET, "A", LOOPBACK),
    ]


def all_tenants_sending_ips() -> list[str]:
    """Every tenant's sending addresses: the mail host and the SPF include are the platform's,
    shared by all tenants (so this crosses tenants on purpose)."""
    rows = IpAddress.objects.filter(
        role=IpRole.SENDING, status__in=IP_SENDING, address__isnull=False
    ).order_by("address")
    return [str(address) for address in rows.values_list("address", flat=True)]


def publish_platform_names(store: ZoneStore, *, sending_ips: Sequence[str]) -> list[ZoneRecord]:
    """Replace whatever the zone holds at those names (of those types) with `platform_records`;
    returns them. Idempotent: `make run` calls it on every start."""
    wanted = platform_records(sending_ips=sending_ips)
    owned = {(r.name, r.type) for r in wanted}
    # The SPF include's other TXT records (none expected) are left alone; only SPF is ours.
    names = {normalize_name(settings.SENDING_SPF_INCLUDE)}

    def change(current: list[ZoneRecord]) -> list[ZoneRecord]:
        kept = [
            r
            for r in current
            if (r.name, r.type) not in owned
            or (r.name in names and r.type == "TXT" and not r.value.lower().startswith("v=spf1"))
        ]
        return [*kept, *wanted]

    store.update(change)
    return wanted
