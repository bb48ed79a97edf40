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
from collections.abc import Sequence
from dataclasses import dataclass
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
    del own_header  # compose sets no header of ours: nothing to match (module docstring)
    return match_report(
        tenant_hint,
        verp_rcpts=[verp_rcpt],
        in_reply_to=in_reply_to,
        references=references,
        original_message_id=original_message_id,
    )


@dataclass(frozen=True)
class Report:
    """What one inbound report offers for matching (the arguments of `match_report`)."""

    verp_rcpts: Sequence[str | None]
    in_reply_to: str | None = None
    references: str | None = None
    original_message_id: str | None = None


def match_report(
    tenant_hint: Tenant,
    *,
    verp_rcpts: Sequence[str | None],
    in_reply_to: str | None = None,
    references: str | None = None,
    original_message_id: str | None = None,
) -> tuple[int, int] | None:
    """`match_message` for a report delivered to several addresses, each lookup done once: the
    same result as calling `match_message` for each address in turn (the headers the same in
    every call) and taking the first match, i.e. the first address's token, then the headers
    (sources 2 and 3), then the other addresses' tokens in order. At most two queries."""
    report = Report(verp_rcpts, in_reply_to, references, original_message_id)
    found = match_reports(tenant_hint, [report])[0]
    return (tenant_hint.pk, found) if found is not None else None


def match_reports(tenant_hint: Tenant, reports: Sequence[Report]) -> list[int | None]:
    """`match_report` of many reports at once (the poller's chunk): the message pk each one
    names, or None, in order. Two queries whatever the count: every report's tokens (pk IN) and
    every candidate Message-ID of their headers (message_id IN). The same answers as one
    `match_report` each: the lookups only read messages, so their order does not matter."""
    schema = cast(TenantConnection, connection).schema_name
    if schema != tenant_hint.schema_name:
        raise RuntimeError(f"match_message for {tenant_hint.slug} run in {schema!r}")
    tokens = [[_token_pk(tenant_hint.pk, a) for a in r.verp_rcpts] for r in reports]
    groups = [_groups(r) for r in reports]
    wanted = {pk for found in tokens for pk in found if pk is not None}
    existing: set[int] = set()
    if wanted:
        existing = set(Message.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    by_id = _message_ids([c for g in groups for group in g for c in group])
    return [_first(t, g, existing, by_id) for t, g in zip(tokens, groups, strict=True)]


def _groups(report: Report) -> list[list[str]]:
    """The report's candidate Message-IDs, in the order they are tried (sources 2 and 3)."""
    refs = _ids((report.references or "")[-_MAX_HEADER:])  # the newest are at the end
    groups = [
        _ids(report.in_reply_to),
        refs[::-1][:MAX_REFERENCES],
        _ids(report.original_message_id),
    ]
    return [list(dict.fromkeys(group)) for group in groups]


def _first(
    tokens: list[int | None], groups: list[list[str]], existing: set[int], by_id: dict[str, int]
) -> int | None:
    """The first address's token, then the headers' Message-IDs (exact, else lower-cased:
    some servers lower-case what they quote), then the other addresses' tokens."""
    if tokens and tokens[0] in existing:
        return tokens[0]
    for group in groups:
        for candidate in group:
            pk = by_id.get(candidate) or by_id.get(candidate.lower())
            if pk is not None:
                return pk
    for pk in tokens[1:]:
        if pk is not None and pk in existing:
            return pk
    return None


def _token_pk(tenant_id: int, address: str | None) -> int | None:
    """The message pk a bounce address names, if it is this tenant's (not yet looked up)."""
    parsed = parse_bounce_address(address or "")
    if parsed is None or parsed[0] != tenant_id:
        return None  # not ours, forged, or another tenant's message
    return parsed[1]


def _ids(value: str | None) -> list[str]:
    """The `<...>` message ids of a header value, in order; a bare id is taken as one."""
    text = (value or "")[:_MAX_HEADER]
    found = [f"<{m}>" for m in _MESSAGE_ID.findall(text)]
    bare = text.strip()
    if not found and bare and " " not in bare and "<" not in bare and len(bare) <= 253:
        found = [f"<{bare}>"]
    return found


def _message_ids(candidates: list[str]) -> dict[str, int]:
    """{message_id: pk} of the tenant's messages among the candidates, as written or in lower
    case. One query at most."""
    if not candidates:
        return {}
    keys = list(dict.fromkeys(candidates + [c.lower() for c in candidates]))
    rows = Message.objects.filter(message_id__in=keys).values_list("message_id", "pk")
    return {message_id: pk for message_id, pk in rows if message_id}


__all__ = ["Report", "match_message", "match_report", "match_reports"]
