"""Local delivery for the sandbox SMTP server: into Dovecot, with the recipients' answers.

`Delivery(imap, rules)` is given to the SMTP server (penguinmails.sandbox.smtp). At RCPT it
answers what the rule table says (defer 451, reject 550, else accept). After DATA, for each
recipient: the message goes into the recipient's Dovecot INBOX when the recipient (its `+tag`
stripped, as Mailu/Dovecot do with RECIPIENT_DELIMITER=+) is a Dovecot user, unless it bounces;
then a `bounce`, `complain`, `reply` or `ooo` rule builds the answer
(penguinmails.sandbox.reports) and delivers it to the Dovecot user the answer is addressed to
(the envelope sender, a VERP `+b-<token>` address, for a DSN, an ARF report and an out-of-office;
the original's Reply-To or From for a reply). Nothing answers a null envelope sender.

Each delivered message gets `Return-Path` and `Delivered-To` on top, as an LMTP delivery does.
A failed delivery (Dovecot down, say) is logged, never refused: the message is captured anyway.
"""

from __future__ import annotations

import email
import imaplib
import logging
from email.utils import getaddresses

from penguinmails.sandbox import junk
from penguinmails.sandbox.imap import DovecotError, SandboxImap
from penguinmails.sandbox.reports import BUILDERS
from penguinmails.sandbox.rules import ACCEPT, RuleStore, base_address, normalise

logger = logging.getLogger(__name__)

DEFER = "451 4.2.0 <{address}>: Recipient address temporarily unavailable, try again later"
REJECT = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"
# The answer's own envelope sender: a person replies from their address; DSNs, feedback reports
# and auto-replies go with the null sender (RFC 3464, RFC 3834), so nothing answers them back.
_NULL_SENDER = ("bounce", "complain", "ooo")


class Delivery:
    def __init__(self, imap: SandboxImap, rules: RuleStore | None = None) -> None:
        self.imap = imap
        self.rules = rules if rules is not None else RuleStore(None)

    def refusal(self, address: str) -> str | None:
        """The RCPT answer when the rule table refuses `address`; None accepts it."""
        action = self.rules.at_rcpt(address)
        if action == "defer":
            return DEFER.format(address=address)
        if action == "reject":
            return REJECT.format(address=address)
        return None

    def deliver(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        """Deliver an accepted message and its answers (blocking: IMAP APPENDs)."""
        message_id = str(email.message_from_bytes(raw).get("Message-ID", "")).strip()
        users = {name.lower(): name for name in self.imap.users()}
        folder = junk.folder_for(raw)  # a share of warm-up mail goes to Junk (sandbox/junk.py)
        for recipient in rcpt_tos:
            action = self.rules.after_data(recipient, message_id)
            if action != "bounce":
                self._append(users, recipient, mail_from, raw, folder)
            if action == ACCEPT or action not in BUILDERS:
                continue
            if not mail_from:
                logger.info("No %s for %s: the envelope sender is null", action, recipient)
                continue
            answer = BUILDERS[action](raw, envelope_sender=mail_from, recipient=recipient)
            target = _to_address(answer) or mail_from
            sender = "" if action in _NULL_SENDER else normalise(recipient)
            self._append(users, target, sender, answer)

    def _append(
        self,
        users: dict[str, str],
        address: str,
        return_path: str,
        raw: bytes,
        folder: str = junk.INBOX,
    ) -> bool:
        user = users.get(base_address(address))
        if user is None:
            logger.debug("Sandbox: %s is no Dovecot user; not delivered there", address)
            return False
        trace = f"Return-Path: <{return_path}>\r\nDelivered-To: {normalise(address)}\r\n"
        try:
            self.imap.deliver(user, trace.encode("utf-8", "replace") + raw, folder)
        except (DovecotError, OSError, imaplib.IMAP4.error):
            logger.exception("Sandbox: delivering to %s in Dovecot failed", user)
            return False
        return True


def _to_address(raw: bytes) -> str:
    head = email.message_from_bytes(raw)
    found = getaddresses([str(head.get("To", ""))])
    return found[0][1] if found and "@" in found[0][1] else ""
