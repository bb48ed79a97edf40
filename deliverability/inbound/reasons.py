"""Why a delivery failed, and whether the address itself is dead: RFC 3463 codes and reply text.

A bounce is `hard` only when it says the address is bad (no such user, no such domain, a
disabled mailbox, or a permanent failure nobody explained): those addresses are suppressed at
once. Everything that speaks about *us* or the moment (blocked, reputation, policy, spam
content, rate limits, a full mailbox, an expired queue) is `soft`: suppressing the address for
our own reputation problem would punish the wrong party, and the automatic pauses deal with it.
"""

from __future__ import annotations

import re
from enum import StrEnum


class BounceClass(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class Reason(StrEnum):
    USER_UNKNOWN = "user_unknown"
    MAILBOX_FULL = "mailbox_full"
    MAILBOX_DISABLED = "mailbox_disabled"
    BLOCKED = "blocked"  # our IP, domain or reputation refused
    POLICY = "policy"  # authentication (SPF, DKIM, DMARC), relaying, local policy
    SPAM_CONTENT = "spam_content"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    EXPIRED = "expired"  # the sender gave up retrying
    DNS = "dns"  # no such domain, no MX, unroutable
    NETWORK = "network"
    OTHER = "other"


HARD_REASONS = frozenset({Reason.USER_UNKNOWN, Reason.MAILBOX_DISABLED, Reason.DNS})

# Exact "subject.detail" codes first, then by subject alone (RFC 3463 section 3).
_BY_CODE: dict[str, Reason] = {
    "1.0": Reason.USER_UNKNOWN,
    "1.1": Reason.USER_UNKNOWN,
    "1.2": Reason.DNS,
    "1.3": Reason.USER_UNKNOWN,
    "1.4": Reason.USER_UNKNOWN,
    "1.6": Reason.USER_UNKNOWN,
    "1.8": Reason.POLICY,
    "1.10": Reason.DNS,
    "2.0": Reason.MAILBOX_DISABLED,
    "2.1": Reason.MAILBOX_DISABLED,
    "2.2": Reason.MAILBOX_FULL,
    "2.3": Reason.TOO_LARGE,
    "3.4": Reason.TOO_LARGE,
    "3.1": Reason.MAILBOX_FULL,
    "4.1": Reason.NETWORK,
    "4.2": Reason.NETWORK,
    "4.3": Reason.DNS,
    "4.4": Reason.DNS,
    "4.6": Reason.NETWORK,
    "4.7": Reason.EXPIRED,
    "5.0": Reason.POLICY,
    "5.3": Reason.POLICY,
    "6.0": Reason.SPAM_CONTENT,
    "7.0": Reason.POLICY,
    "7.1": Reason.POLICY,
    "7.7": Reason.SPAM_CONTENT,
    "7.23": Reason.POLICY,
    "7.25": Reason.POLICY,
    "7.26": Reason.POLICY,
    "7.27": Reason.DNS,
    "7.28": Reason.RATE_LIMITED,
}
_BY_SUBJECT: dict[str, Reason] = {"2": Reason.MAILBOX_DISABLED, "6": Reason.SPAM_CONTENT}

# Text beats a generic code: "550 5.7.1 ... listed at Spamhaus" is a block, not a policy.
_TEXT: tuple[tuple[Reason, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        (
            Reason.MAILBOX_FULL,
            r"mailbox (is )?full|over ?quota|quota (exceeded|full)|"
            r"exceeded (the )?(storage|quota)|insufficient (system )?storage|mailbox size limit|"
            r"full mailbox|too many messages",
        ),
        (
            Reason.BLOCKED,
            r"block ?list|black ?list|blocked|spamhaus|spamcop|barracuda|\brbl\b|"
            r"dnsbl|reputation|listed (on|at|in)|banned|rejected due to .*ip|sorbs|"
            r"not allowed to send|access denied",
        ),
        (
            Reason.SPAM_CONTENT,
            r"\bspam\b|content.{0,20}reject|virus|malware|phish|"
            r"junk mail|looks like spam|message content",
        ),
        (
            Reason.RATE_LIMITED,
            r"rate limit|too many (connections|recipients|mails|messages)|"
            r"try again later|throttl|temporarily deferred",
        ),
        (
            Reason.USER_UNKNOWN,
            r"user unknown|unknown user|no such (user|mailbox|recipient)|"
            r"does not exist|doesn'?t exist|not exist|invalid (recipient|mailbox|address)|"
            r"recipient (address )?rejected|unknown (recipient|mailbox|local)|mailbox unavailable|"
            r"address rejected|mailbox not found|no mailbox|user not found|unrouteable address|"
            r"not a valid mailbox|unknown address|no longer (valid|available)|"
            r"recipient not found|account .{0,30}(disabled|inactive)|not our customer|"
            r"user doesn't have",
        ),
        (
            Reason.MAILBOX_DISABLED,
            r"(account|mailbox|user|address) (has been |is )?"
            r"(disabled|suspended|inactive|deactivated|locked|frozen)|expired account",
        ),
        (
            Reason.DNS,
            r"host (or domain name )?not found|domain not found|no mx|"
            r"name service error|host unknown|unknown host|no such domain|nxdomain|"
            r"domain (does not|doesn't) exist|unroutable|mx (record|lookup)",
        ),
        (
            Reason.EXPIRED,
            r"expired|retry time(out)? (not reached|exceeded)|too long|"
            r"giving up|could not be delivered for \d+|delivery time ?out|timed out",
        ),
        (Reason.TOO_LARGE, r"too (large|big)|size (limit|exceeds)|message size"),
        (
            Reason.POLICY,
            r"\bspf\b|dkim|dmarc|authenticat|not permitted|relay|policy|"
            r"refused|denied|not authorized",
        ),
    )
)


def reason_for(status: str | None, text: str) -> Reason:
    """The reason a status code and its reply text give, text winning over a generic code."""
    from_text = next((reason for reason, pattern in _TEXT if pattern.search(text)), None)
    from_code = _code_reason(status)
    if from_code in (Reason.USER_UNKNOWN, Reason.MAILBOX_FULL, Reason.DNS, Reason.TOO_LARGE):
        # A specific code (5.1.1, 5.2.2) is what the server meant, whatever its prose says.
        return from_code
    return from_text or from_code or Reason.OTHER


def _code_reason(status: str | None) -> Reason | None:
    if not status:
        return None
    _, _, rest = status.partition(".")
    return _BY_CODE.get(rest) or _BY_SUBJECT.get(rest.partition(".")[0])


def class_for(status: str | None, reason: Reason) -> BounceClass:
    if status and status.startswith("4"):
        return BounceClass.SOFT
    if reason in HARD_REASONS:
        return BounceClass.HARD
    if reason is Reason.OTHER and status and status.startswith("5"):
        return BounceClass.HARD  # a permanent failure nobody explained: do not mail it again
    return BounceClass.SOFT


_REASON_STATUS = {
    Reason.USER_UNKNOWN: "5.1.1",
    Reason.MAILBOX_FULL: "4.2.2",
    Reason.MAILBOX_DISABLED: "5.2.1",
    Reason.BLOCKED: "5.7.1",
    Reason.POLICY: "5.7.1",
    Reason.SPAM_CONTENT: "5.7.1",
    Reason.TOO_LARGE: "5.3.4",
    Reason.RATE_LIMITED: "4.7.0",
    Reason.EXPIRED: "4.4.7",
    Reason.DNS: "5.1.2",
    Reason.NETWORK: "4.4.1",
}


def status_for(reason: Reason, smtp_code: str | None) -> str | None:
    """A status for a bounce that states none: from the SMTP reply code, else the reason."""
    if reason in _REASON_STATUS:
        status = _REASON_STATUS[reason]
        if smtp_code and smtp_code[0] in "45":
            return smtp_code[0] + status[1:]
        return status
    if smtp_code and smtp_code[0] in "45":
        return f"{smtp_code[0]}.0.0"
    return None
