"""Reading what comes back: a pure classification of one raw inbound message.

`classify(raw)` (classify.py) takes the message's bytes and says what it is (bounce, complaint,
auto-reply, unsubscribe request, reply or other) and, for a bounce, every failed recipient with
its RFC 3463 status, the remote server's reply, a hard/soft class and a reason. No database, no
network: matching to our messages and acting on the result belong to the callers.
"""

from __future__ import annotations

from deliverability.inbound.classify import (
    Classification,
    Kind,
    Recipient,
    classify,
    classify_parsed,
)
from deliverability.inbound.parse import Parsed, parse_bytes

__all__ = [
    "Classification",
    "Kind",
    "Parsed",
    "Recipient",
    "classify",
    "classify_parsed",
    "parse_bytes",
]
