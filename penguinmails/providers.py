"""The names the settings choose outside providers by (`VPS_PROVIDER`, `DNS_PROVIDER`).

They live in the core because the settings, infrastructure (VPS, and the local VPS's reverse DNS
into the sandbox zones) and deliverability (DNS) all read them; the adapters themselves stay in
their apps (`infrastructure/providers/`, `deliverability/dns/providers.py`).
"""

from __future__ import annotations

from enum import StrEnum


class VpsProviderName(StrEnum):
    """`VPS_PROVIDER`, and a VPS row's `provider`."""

    HOSTWINDS = "hostwinds"
    LOCAL = "local"  # loopback stand-ins (docs: the sandbox)


class DnsProviderName(StrEnum):
    """`DNS_PROVIDER`: who publishes a sending domain's records."""

    MANUAL = "manual"  # the tenant publishes; we show the records and verify
    LOCAL = "local"  # the sandbox DNS server's zones
    CLOUDFLARE = "cloudflare"
