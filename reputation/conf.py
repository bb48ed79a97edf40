"""Reputation score settings (docs/reputation.md, "Reputation score"; .env.example), read once
with penguinmails.env. The blocklist settings are in penguinmails.settings (DNSBL_*)."""

from __future__ import annotations

from penguinmails.env import env_int

# At or above this score a mailbox keeps its whole campaign allowance; below, the score's tens.
FULL_SCORE = env_int("REPUTATION_FULL_SCORE", default=80)
# The least share of its allowance a low score leaves (percent): pausing is not the score's job.
MIN_SHARE_PERCENT = env_int("REPUTATION_MIN_SHARE_PERCENT", default=10)
# The latest mailbox score counts for the allowance this many days (older: ignored).
FRESH_DAYS = env_int("REPUTATION_FRESH_DAYS", default=2)
