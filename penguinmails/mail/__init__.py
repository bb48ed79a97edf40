"""Transactional email (verification, password reset, invitations) behind one interface.

    send_transactional("invitation", to=email, variables={...}, idempotency_key="invite-42")

The message goes out after the caller's transaction commits. With LOOP_API_KEY set it is sent
through Loops (penguinmails.mail.loops); otherwise through Django's email backend, rendered from
templates/emails/<kind>.subject.txt, <kind>.txt and <kind>.html.
"""

from __future__ import annotations

from penguinmails.mail.transactional import KINDS, send_transactional, send_transactional_now

__all__ = ["KINDS", "send_transactional", "send_transactional_now"]
