"""What a plan's server size means in memory, and what that allows (Mailu's antivirus).

The sizes are billing's (billing.limits.VpsSize); their memory is configuration
(VPS_MEMORY_MB, "size=MB" pairs), since the provider's plan behind each size is too
(HOSTWINDS_PLAN_IDS).
"""

from __future__ import annotations

from django.conf import settings


def memory_mb(size: str) -> int | None:
    """The memory of a server of this size, None when VPS_MEMORY_MB does not say."""
    raw = settings.VPS_MEMORY_MB.get(size, "")
    return int(raw) if str(raw).strip().isdigit() else None


def antivirus_enabled(size: str) -> bool:
    """Mailu's ClamAV runs on servers with at least ANTIVIRUS_MIN_MEMORY_MB of memory; a size
    whose memory is not configured is taken as too small."""
    memory = memory_mb(size)
    return memory is not None and memory >= settings.ANTIVIRUS_MIN_MEMORY_MB
