"""Which of our messages an inbound report (bounce, complaint, reply) is about (issue 12, item 2;
docs/sending.md, "Bounce address (VERP)"). A pure lookup for the inbound poller: no writes.

Sources, in order, the first that names a message of the tenant wins:

1. `verp_rcpt`: the address the report was delivered to (our envelope sender, the message's
   bounce address, campaigns.sending.verp). Survives a receiver that strips every header.
2. `in_reply_to`, then `references` (newest first): against Message.message_id.
3. `original_message_id`: the Message-ID the report quotes from the original (the DSN's or
   ARF's attached headers).
4. `own_header`: accepted for the poller's sake and not used. compose adds no header of ours
   (no `X-PM-Message`): the Message-ID and the signed List-Unsubscribe token already carry the
   message, and a header of our own would only tell spam filters who sent it.

Tenant-bound: a bounce token of another tenant is no match (its MAC verifies, its tenant is not
this one), and Message-IDs are looked up in this tenant's schema only, so a report naming another
tenant's message matches nothing. Runs in the hinted tenant's schema (the poller's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from django.db import connection

from campaigns.models import Message
from campaigns.sending.verp import parse_bounce_address
from tenants.db import TenantConnection
from tenants.models import Tenant

_MESSAGE_ID = re.compile(r"<([^<>\s]{1,253})>")
MAX_REFERENCES = 50  # a hostile References header holds thousands: the newest are what we sent
_MAX_HEADER = 20_000


def match_message(
    tenant_hint: Tenant,
    *,
    verp_rcpt: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    original_message_id: str | None = None,
    own_header: str | None = None,
) -> tuple[int, int] | None:
    """(tenant_id, message_pk) of the tenant's message the report is about, or None."""
    schema = cast(TenantConnection, connection).schema_name
    if schema != tenant_hint.schema_name:
        raise RuntimeError(f"match_message for {tenant_hint.slug} run in {schema!r}")
    by_token = _by_token(tenant_hint.pk, verp_rcpt)
    if by_token is not None:
        return tenant_hint.pk, by_token
    refs = _ids((references or "")[-_MAX_HEADER:])  # the newest are at the end
    for group in (_ids(in_reply_to), refs[::-1][:MAX_REFERENCES], _ids(original_message_id)):
        found = _by_message_id(group)
        if found is not None:
            return tenant_hint.pk, found
    del own_header  # compose sets no header of ours: nothing to match (module docstring)
    return None


def _by_token(tenant_id: int, address: str | None) -> int | None:
    parsed = parse_bounce_address(address or "")
    if parsed is None or parsed[0] != tenant_id:
        return None  # not ours, forged, or another tenant's message
    pk = parsed[1]
    return pk if Message.objects.filter(pk=pk).exists() else None


def _ids(value: str | None) -> list[str]:
    """The `<...>` message ids of a header value, in order; a bare id is taken as one."""
    text = (value or "")[:_MAX_HEADER]
    found = [f"<{m}>" for m in _MESSAGE_ID.findall(text)]
    bare = text.strip()
    if not found and bare and " " not in bare and "<" not in bare and len(bare) <= 253:
        found = [f"<{bare}>"]
    return found


def _by_message_id(candidates: Iterable[str]) -> int | None:
    """The pk of the first candidate that is one of the tenant's Message-IDs (exact, or in
    lower case: some servers lower-case what they quote). One query."""
    ordered = list(dict.fromkeys(candidates))
    if not ordered:
        return None
    keys = list(dict.fromkeys(ordered + [c.lower() for c in ordered]))
    rows = dict(Message.objects.filter(message_id__in=keys).values_list("message_id", "pk"))
    for candidate in ordered:
        pk = rows.get(candidate) or rows.get(candidate.lower())
        if pk is not None:
            return pk
    return None


__all__ = ["match_message"]
