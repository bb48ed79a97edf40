"""The core's own periodic rules (the seed's four alert conditions), registered at import by
AlertsConfig.ready."""

from __future__ import annotations
