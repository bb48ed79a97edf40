"""Job handlers of the send path (docs/sending.md): the scheduler tick, per-tenant scheduling and
batched sends. Thin: one service call each, ids only in the payload."""

from __future__ import annotations
