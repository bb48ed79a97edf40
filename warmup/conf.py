"""Warm-up settings (docs/warmup.md, "Settings"; .env.example), read once with penguinmails.env."""

from __future__ import annotations

from penguinmails.env import env_bool, env_int

# Hosted (platform) mailboxes join the pool when they become active; connected ones opt in.
HOSTED_DEFAULT = env_bool("WARMUP_HOSTED_DEFAULT", default=True)
# Partners each member gets for the day (a plan sending more goes round its list).
PARTNERS = env_int("WARMUP_PARTNERS", default=40)
# Working hours of the day's spread, in each mailbox's timezone.
DAY_START_HOUR = env_int("WARMUP_DAY_START_HOUR", default=8)
DAY_END_HOUR = env_int("WARMUP_DAY_END_HOUR", default=19)
# Due messages one send job takes (it enqueues itself again when more are due).
SEND_BATCH = env_int("WARMUP_SEND_BATCH", default=200)
# A message deferred (4xx, connection failure) this long after its time fails for good.
GIVE_UP_HOURS = env_int("WARMUP_GIVE_UP_HOURS", default=6)
# Job priorities (lower runs first): warm-up waits behind campaign work.
PRIORITY = env_int("WARMUP_PRIORITY", default=150)
