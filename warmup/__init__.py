"""Warm-up: the platform-wide pool, each mailbox's ramp, warm-up sends and the receiving side
(docs/warmup.md)."""
