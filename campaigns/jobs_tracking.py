"""Job handlers of tracking (docs/tracking.md): moving buffered events from Redis into the
tenants' schemas."""

from __future__ import annotations
