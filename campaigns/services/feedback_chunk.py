"""A chunk of inbound messages as campaigns acts on it (docs/inbound.md, "Actions"; the actions
themselves are campaigns.services.feedback's).

deliverability acts on up to 50 inbound messages in one transaction and hands campaigns the
whole chunk with each message. The chunk's first message builds a `Chunk`, in a few queries
whatever its size:

- every message matched (`match_reports`: two queries; an unsubscribe request's signed token
  needs none) and the messages they name locked, in pk order;
- for the leads of its bounces, complaints and replies: their status (locked, so what a reply
  answers, "marked replied" or not, is what gets written), their active enrollments (with their
  campaign's stop_on_reply) and which of its complained messages already have a complaint event;
- the soft bounces of each bounced address in the window.

The actions then decide in memory, each seeing what the ones before it decided (a lead bounced
earlier in the chunk is not "marked replied"; an enrollment stopped by a bounce is not stopped
again by a reply, and keeps the first reason), and keep their writes here: suppressions (the
first reason of an address kept), hard-bounced messages' transitions (one UPDATE per bounce
status), leads marked bounced, enrollments stopped (one UPDATE ... FROM VALUES), replies
(`record_replies`: leads and replied_at). They are written at the chunk's end, in its
transaction (penguinmails.batching), in that order, or at once when a message is acted on
alone. An action that runs statements of its own on a lead with writes kept (an unsubscribe
request, an out-of-office delay), and a reply and a hard bounce of the same lead (the reply's
replied_at goes to the lead's latest message still sent), have them written first, so each
reads what the actions before it did, exactly as when each message wrote at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import (
    CampaignLead,
    EnrollmentStatus,
    EventKind,
    Lead,
    LeadStatus,
    Message,
    MessageEvent,
    MessageStatus,
    SuppressionReason,
)
from campaigns.services.campaigns.replies import record_replies
from campaigns.services.matching import Report, match_reports
from campaigns.services.suppressions import mark_leads_bounced, suppress_rows
from campaigns.tracking import tokens
from penguinmails import batching, states
from tenants.models import Tenant

ACTING = ("bounce", "complaint", "reply")  # the kinds whose leads are read up front


@dataclass(frozen=True)
class Item:
    """One message of a chunk, as deliverability sends it (inbound_store.Classified)."""

    inbound: Any
    classification: Any
    headers: Any


@dataclass
class Writes:
    """What the chunk's actions decided and has not been written yet."""

    suppressions: dict[str, tuple[SuppressionReason, str]] = field(default_factory=dict)
    bounced: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    bouncing: set[int] = field(default_factory=set)  # the pks in `bounced`
    bouncing_leads: set[int] = field(default_factory=set)  # and their leads
    bounced_leads: set[int] = field(default_factory=set)
    stops: dict[int, str] = field(default_factory=dict)
    replies: set[int] = field(default_factory=set)
    leads: set[int] = field(default_factory=set)  # every lead with a write kept
    at: datetime | None = None


@dataclass
class Chunk:
    """A chunk's matches (inbound pk -> message pk), its matched messages (locked), what its
    actions read (lead statuses, active enrollments, soft bounce counts, complained messages)
    kept up to date as they decide, and the writes they keep (`Writes`)."""

    matches: dict[int, int]
    messages: dict[int, Message]
    soft: dict[str, int]
    alone: bool = False
    complained: set[int] = field(default_factory=set)
    lead_status: dict[int, str] = field(default_factory=dict)
    enrollments: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)

    @classmethod
    def of(cls, tenant: Tenant, chunk: Sequence[Any], *, alone: bool = False) -> Chunk:
        """Match every message of the chunk, lock the messages they name and read what the
        actions need (module docstring). A message matched twice is one object, so the second
        action sees what the first did to it. In a batch, the writes are kept for its end."""
        items = [i for i in chunk if str(i.classification.kind) != "other"]
        matches = _match(tenant, items)
        wanted = set(matches.values())
        locked = Message.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
        messages = {m.pk: m for m in locked} if wanted else {}

        def matched(kinds: tuple[str, ...]) -> list[Message]:
            return [
                messages[matches[i.inbound.pk]]
                for i in items
                if str(i.classification.kind) in kinds and matches.get(i.inbound.pk) in messages
            ]

        bounced = {m.to_email.strip().lower() for m in matched(("bounce",))}
        found = cls(matches, messages, _soft_bounces(bounced), alone)
        found._read_leads(sorted({m.lead_id for m in matched(ACTING)}))
        complaints = [m.pk for m in matched(("complaint",))]
        if complaints:
            found.complained = set(
                MessageEvent.objects.filter(
                    message_id__in=complaints, kind=EventKind.COMPLAINT
                ).values_list("message_id", flat=True)
            )
        # In a batch, the writes wait for its end; otherwise the receiver writes after each.
        found.alone = alone or not batching.defer(_flush_chunks, [found])
        return found

    def _read_leads(self, lead_ids: list[int]) -> None:
        if not lead_ids:
            return
        self.lead_status = dict(
            Lead.objects.select_for_update()
            .filter(pk__in=lead_ids)
            .order_by("pk")
            .values_list("pk", "status")
        )
        active = CampaignLead.objects.filter(lead_id__in=lead_ids, status=EnrollmentStatus.ACTIVE)
        for pk, lead_id, stop_on_reply in active.order_by("pk").values_list(
            "pk", "lead_id", "campaign__stop_on_reply"
        ):
            self.enrollments.setdefault(lead_id, []).append((pk, bool(stop_on_reply)))

    # What the actions decide (written by `flush`).

    def suppress(self, address: str, reason: SuppressionReason, source: str, at: datetime) -> None:
        self.writes.suppressions.setdefault(address.strip().lower(), (reason, source[:200]))
        self._kept(None, at)

    def bounce_message(self, message: Message, reason: str, at: datetime) -> bool:
        """A hard bounce's move to `bounced`, once per message (False when it is not sent or
        already bouncing)."""
        if message.status not in (MessageStatus.SENT, MessageStatus.UNKNOWN):
            return False
        if message.pk in self.writes.bouncing:
            return False
        if message.lead_id in self.writes.replies:
            self.flush()  # the reply kept for this lead reads its messages' statuses: first
        self.writes.bounced[reason].append(message)
        self.writes.bouncing.add(message.pk)
        self.writes.bouncing_leads.add(message.lead_id)
        self._kept(message.lead_id, at)
        return True

    def mark_bounced(self, lead_id: int, at: datetime) -> None:
        """The lead becomes bounced (from active or replied)."""
        if self.lead_status.get(lead_id) in (LeadStatus.ACTIVE, LeadStatus.REPLIED):
            self.lead_status[lead_id] = LeadStatus.BOUNCED
        self.writes.bounced_leads.add(lead_id)
        self._kept(lead_id, at)

    def stop(self, lead_id: int, reason: str, at: datetime, *, on_reply: bool = False) -> int:
        """Stop the lead's active enrollments (only those of stop_on_reply campaigns when
        `on_reply`); returns how many."""
        active = self.enrollments.get(lead_id, [])
        stopped = [e for e in active if e[1] or not on_reply]
        self.enrollments[lead_id] = [e for e in active if e not in stopped]
        for pk, _ in stopped:
            self.writes.stops.setdefault(pk, reason)
        self._kept(lead_id, at)
        return len(stopped)

    def reply(self, lead_id: int, at: datetime) -> bool:
        """The lead is marked replied (True when it was active) and stops in the campaigns that
        stop on reply; its latest sent message of each campaign gets replied_at."""
        if lead_id in self.writes.bouncing_leads:
            self.flush()  # a bounce kept for this lead changes which message the reply marks
        changed = self.lead_status.get(lead_id) == LeadStatus.ACTIVE
        if changed:
            self.lead_status[lead_id] = LeadStatus.REPLIED
        self.stop(lead_id, "Replied.", at, on_reply=True)
        self.writes.replies.add(lead_id)
        return changed

    def unsubscribed(self, lead_id: int) -> None:
        """An unsubscribe (written by its own service) changed the lead: keep the view true."""
        if lead_id in self.lead_status:
            self.lead_status[lead_id] = LeadStatus.UNSUBSCRIBED
        self.enrollments[lead_id] = []

    def before_own_writes(self, lead_id: int) -> None:
        """An action about to run statements of its own on the lead: write what is kept for it
        (all of it, in order) first."""
        if lead_id in self.writes.leads:
            self.flush()

    def add(self, event: MessageEvent, to_email: str) -> None:
        """An event written now (alone) or at the chunk's end, counted for what reads it."""
        if event.kind == EventKind.COMPLAINT:
            self.complained.add(event.message_id)
        if event.kind == EventKind.BOUNCE and event.machine_reason.startswith("soft"):
            self.soft[to_email.lower()] = self.soft.get(to_email.lower(), 0) + 1
        if self.alone or not batching.defer(_write_events, [event]):
            event.save()

    def _kept(self, lead_id: int | None, at: datetime) -> None:
        if lead_id is not None:
            self.writes.leads.add(lead_id)
        self.writes.at = self.writes.at or at

    def flush(self) -> None:
        """Write what the actions kept: suppressions, bounced messages, leads marked bounced,
        replies, enrollments stopped (a few statements), and forget it."""
        writes, self.writes = self.writes, Writes()
        at = writes.at
        if at is None:
            return
        suppress_rows(
            [(value, reason, source) for value, (reason, source) in writes.suppressions.items()],
            at=at,
        )
        for reason, group in writes.bounced.items():
            states.transition_each(
                [(m, {"bounced_at": at}) for m in group], MessageStatus.BOUNCED, reason=reason
            )
        record_replies(writes.replies, at=at)
        mark_leads_bounced(writes.bounced_leads, at=at)
        _stop_enrollments(writes.stops, at)


def _flush_chunks(chunks: list[Chunk]) -> None:
    for chunk in chunks:
        chunk.flush()


def _stop_enrollments(stops: dict[int, str], at: datetime) -> int:
    """Stop these enrollments, each with its reason, if still active (one statement)."""
    if not stops:
        return 0
    rows = ", ".join(["(%s::bigint, %s::text)"] * len(stops))
    params: list[Any] = [EnrollmentStatus.STOPPED.value, at]
    for pk, reason in stops.items():
        params.extend([pk, reason])
    params.append(EnrollmentStatus.ACTIVE.value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE campaigns_campaignlead AS e
            SET status = %s, next_due_at = NULL, stop_reason = v.reason, updated_at = %s
            FROM (VALUES {rows}) AS v(id, reason)
            WHERE e.id = v.id AND e.status = %s
            """,  # noqa: S608 - the VALUES list is placeholders only
            params,
        )
        return int(cursor.rowcount)


def _write_events(events: list[MessageEvent]) -> None:
    MessageEvent.objects.bulk_create(events)


def _match(tenant: Tenant, items: list[Any]) -> dict[int, int]:
    """inbound pk -> message pk for the items that name a message of the tenant (two queries,
    the same answers as `match_message` for each)."""
    pending: list[tuple[int, Report]] = []
    matches: dict[int, int] = {}
    for item in items:
        pk = _by_token(tenant, item.classification)
        if pk is not None:
            matches[item.inbound.pk] = pk
        else:
            pending.append((item.inbound.pk, _report(item.classification, item.headers)))
    found = match_reports(tenant, [report for _, report in pending]) if pending else []
    matches.update({i: pk for (i, _), pk in zip(pending, found, strict=True) if pk is not None})
    return matches


def _soft_bounces(addresses: set[str]) -> dict[str, int]:
    """The soft bounce events of each address in the last INBOUND_SOFT_BOUNCE_DAYS (any
    message to it, the address compared without case), in one query."""
    if not addresses:
        return {}
    since = timezone.now() - timedelta(days=settings.INBOUND_SOFT_BOUNCE_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.address, COUNT(*) FROM unnest(%s::text[]) AS a(address)
            JOIN campaigns_message m ON UPPER(m.to_email::text) = UPPER(a.address)
            JOIN campaigns_messageevent e ON e.message_id = m.id
            WHERE e.kind = %s AND e.machine_reason LIKE 'soft%%' AND e.at >= %s
            GROUP BY a.address
            """,
            [sorted(addresses), EventKind.BOUNCE.value, since],
        )
        return {address: int(n) for address, n in cursor.fetchall()}


def _by_token(tenant: Tenant, classification: Any) -> int | None:
    """An unsubscribe request's signed token, when it is this tenant's (not looked up)."""
    if str(classification.kind) == "unsubscribe" and classification.unsubscribe_token:
        token = _unsubscribe_token(classification.unsubscribe_token)
        if token is not None and token.tenant_id == tenant.pk:
            return int(token.message_pk)
    return None


def _report(classification: Any, headers: Any) -> Report:
    return Report(
        verp_rcpts=[*headers.delivered_to, None][:20],
        in_reply_to=headers.in_reply_to or None,
        references=headers.references or None,
        original_message_id=classification.original_message_id,
    )


def _unsubscribe_token(text: str) -> tokens.Token | None:
    """The token in an unsubscribe subject: the one-click URL's (what compose puts in the
    mailto's subject) or the mailto address's form; None when neither verifies."""
    try:
        return tokens.verify(text, kind=tokens.TokenKind.UNSUBSCRIBE)
    except tokens.BadToken:
        pass
    try:
        return tokens.verify_mailto(text)
    except tokens.BadToken:
        return None
