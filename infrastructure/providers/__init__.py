"""VPS providers behind one interface (`VpsProvider`), chosen by settings.

`get_vps_provider()` gives Hostwinds when `HOSTWIND_API_KEY` is set (or `VPS_PROVIDER=hostwinds`),
else the local provider, so `make run` and the tests never need a vendor account.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from infrastructure.providers.base import (
    NotSupported,
    ProviderError,
    ResourceFigures,
    ServerInfo,
    ServerNotFound,
    ServerRef,
    ServerStatus,
    VpsProvider,
)
from infrastructure.providers.hostwinds import HostwindsProvider
from infrastructure.providers.local import LocalProvider
from penguinmails.providers import DnsProviderName, VpsProviderName

__all__ = [
    "HostwindsProvider",
    "LocalProvider",
    "NotSupported",
    "ProviderError",
    "ResourceFigures",
    "ServerInfo",
    "ServerNotFound",
    "ServerRef",
    "ServerStatus",
    "VpsProvider",
    "get_vps_provider",
]


def get_vps_provider() -> VpsProvider:
    """The provider the settings choose. Cheap to call: build one per job, not per process."""
    choice = settings.VPS_PROVIDER or (
        VpsProviderName.HOSTWINDS if settings.HOSTWIND_API_KEY else VpsProviderName.LOCAL
    )
    if choice == VpsProviderName.HOSTWINDS:
        if not settings.HOSTWIND_API_KEY:
            raise ImproperlyConfigured("VPS_PROVIDER is hostwinds but HOSTWIND_API_KEY is not set.")
        return HostwindsProvider(
            settings.HOSTWIND_API_KEY,
            api_url=settings.HOSTWINDS_API_URL,
            timeout=settings.HOSTWINDS_TIMEOUT_SECONDS,
            user_data_field=settings.HOSTWINDS_USER_DATA_FIELD,
            order_ip_action=settings.HOSTWINDS_ORDER_IP_ACTION,
        )
    if choice == VpsProviderName.LOCAL:
        return LocalProvider(
            settings.LOCAL_VPS_STATE_FILE,
            max_secondary_ips=settings.LOCAL_VPS_MAX_SECONDARY_IPS,
            # The sandbox is the whole DNS: reverse DNS set here is served there, with its A.
            dns_zones=settings.SANDBOX_DNS_ZONES
            if settings.DNS_PROVIDER == DnsProviderName.LOCAL
            else None,
        )
    raise ImproperlyConfigured(f"VPS_PROVIDER must be 'hostwinds' or 'local', got {choice!r}.")
