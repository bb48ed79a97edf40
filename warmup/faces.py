"""Panels a higher app adds to the warm-up page of a mailbox (the reputation app adds the score
and its parts): registered at start-up (AppConfig.ready), so warmup imports nothing above it.
A panel gets the request's principal and the mailbox and returns HTML ("" for nothing)."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.safestring import SafeString, mark_safe

from deliverability.models import Mailbox
from tenants.services.access import Principal

MailboxPanel = Callable[[Principal, Mailbox], str]
_PANELS: list[MailboxPanel] = []


def register_mailbox_panel(panel: MailboxPanel) -> None:
    """Add a panel (the same function twice is a no-op)."""
    if panel not in _PANELS:
        _PANELS.append(panel)


def mailbox_panels(principal: Principal, mailbox: Mailbox) -> list[SafeString]:
    # Each panel renders through a template (autoescaped): its output is trusted HTML.
    return [mark_safe(html) for panel in _PANELS if (html := panel(principal, mailbox))]  # noqa: S308
