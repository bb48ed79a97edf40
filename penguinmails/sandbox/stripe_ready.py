"""What runs once `manage.py sandbox stripe` listens (billing registers: plans synced to the
fresh local Stripe, stale references from an earlier run dropped). A module of its own so that
registering does not import the server (localstripe, aiohttp) into every process."""

from __future__ import annotations

from collections.abc import Callable

READY_HOOKS: list[Callable[[str], None]] = []


def on_ready(hook: Callable[[str], None]) -> None:
    """Call `hook(url)` once the local Stripe listens at `url` (not in tests: they start the
    server themselves)."""
    if hook not in READY_HOOKS:
        READY_HOOKS.append(hook)
