"""The batched send (docs/sending.md, "Sending"): one `campaigns.send` job carries a batch of one
campaign's queued messages; each message keeps its own state row.

    queued ──claim──► sending ──250──► sent
      ▲                  ├──5xx──► bounced (address suppressed, lead bounced)
      ├──4xx, backoff────┤──4xx after MAX_ATTEMPTS──► failed
      │                  ├──connection lost after DATA──► unknown (never resent blindly)
      └──run died before DATA──┘   run died after DATA started──► unknown
    queued ──lead-level check──► skipped        queued ──temporary check──► queued (held)

Order of work per batch: messages found already `sending` by this job (its previous run died)
are recovered (`recovery.recover_lost_sends`): those whose DATA never started are sent by this
run, the others become unknown; the checks run in bulk; then per chunk of CLAIM_CHUNK messages:
one committed UPDATE claims them (queued → sending, attempts + 1, the Message-ID fixed on the
first attempt and kept on retries) before the first byte goes to SMTP; the chunk goes out in
groups of messages on distinct mailboxes, driven at once over their reused connections
(`SmtpPool.deliver_group`: MAIL, RCPT and DATA written to every connection before any reply is
read, in one write where the server offers PIPELINING; the next group is rendered and composed
while the servers answer); after the group's 354s and before its bodies one statement gives
the rows their durable DATA marker (`recovery.mark_data_started`); and one transaction records
the chunk's results, rollups, enrollment moves, suppressions and mailbox counts. A crash
therefore leaves at most one chunk in `sending`: the messages past DATA become unknown, the
others go back to the queue. Round trips per chunk: two to the database for the claim
and the record (plus their statements), one per group for the marker; per group, two waits on
SMTP (envelope, body) shared by its connections (docs/sending.md, "Throughput").
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns import webhook_events
from campaigns.models import (
    LEAD_FIELDS,
    Campaign,
    CampaignStatus,
    EmailTemplate,
    MessageStatus,
    StepVariant,
    StoppedBy,
)
from campaigns.rendering import (
    CompiledTemplate,
    Rendered,
    RenderError,
    compile_template,
    html_to_text,
)
from campaigns.sending import compose as composer
from campaigns.sending import verp
from campaigns.sending.checks import Context, Item, Stop, run_checks
from campaigns.sending.dispatch import dispatch
from campaigns.sending.enrollments import advance_enrollments, stop_enrollments
from campaigns.sending.outcomes import by_mailbox, log_outcomes, record_stops, suppress_bounced
from campaigns.sending.recovery import (
    accept_unknown,
    mark_data_started,
    recover_lost_sends,
    resend_unknown,
)
from campaigns.sending.sql import chunks, fetch, values
from campaigns.services.stats import Bump, bump
from campaigns.tracking import links
from deliverability.models import DomainStatus, Mailbox
from deliverability.services.mailboxes import record_sends
from deliverability.smtp_pool import Delivery, Outcome, Outgoing, SmtpPool
from tenants.models import Tenant

# Messages claimed and recorded together. The record's ~10 statements (message rows, rollups,
# enrollments, mailbox counts) cost PostgreSQL about the same for 100 rows as for 250: 250
# takes a fifth off its CPU per message (issue 16). The price: a worker killed mid-chunk
# leaves up to this many messages delivered but not recorded, which become unknown.
CLAIM_CHUNK = 250
MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
DUE_SLACK = timedelta(seconds=1)  # a message this close to its slot is sent now

S = MessageStatus


@dataclass
class BatchReport:
    """Counts of one batch, by final state of this run (logged by the job, printed by tests)."""

    counts: Counter[str] = field(default_factory=Counter)
    stopped_by: Counter[str] = field(default_factory=Counter)
    later: int = 0  # not due yet: handed to a follow-up job
    requeued: int = 0  # left in `sending` by a dead run before DATA: back in the queue


@dataclass
class _Result:
    item: Item
    status: str
    code: int | None = None
    response: str = ""
    subject: str = ""
    stopped_by: str = ""
    reason: str = ""
    retry_at: datetime | None = None


def backoff(attempts: int) -> timedelta:
    """Exponential from BACKOFF_BASE, capped, with up to 25 % jitter."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(1.0, 1.25)


# --- entry point ---------------------------------------------------------------------------------
def send_batch(
    tenant: Tenant, *, campaign_id: int, message_ids: Sequence[int], job_id: int
) -> BatchReport:
    """Send the batch's due messages that this job holds. Idempotent: a re-run never sends a
    message twice (claimed rows are `sending`; found again, they become unknown). Runs outside
    any transaction: each chunk's claim must be committed before SMTP."""
    if connection.in_atomic_block:
        raise RuntimeError("send_batch must run outside a transaction (claims commit before SMTP)")
    report = BatchReport()
    now = timezone.now()
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return report
    rows = _batch_rows(message_ids, job_id)
    lost = [r[0] for r in rows if r[9] == S.SENDING]
    if lost:
        # The previous run of this job died: what never reached DATA is sent by this run.
        recovered = recover_lost_sends(lost, job_id=job_id, why="its send job died and ran again")
        report.counts[S.UNKNOWN] += recovered.unknown
        report.counts[S.FAILED] += recovered.failed
        report.requeued = recovered.requeued
        rows = _batch_rows(message_ids, job_id)
    items = [Item(*r[:9]) for r in rows if r[9] == S.QUEUED]
    due = [i for i in items if i.scheduled_for <= now + DUE_SLACK]
    later = [i for i in items if i.scheduled_for > now + DUE_SLACK]
    if later:
        with transaction.atomic():
            dispatch(tenant, campaign_id, [(i.pk, i.scheduled_for) for i in later])
        report.later = len(later)
    if not due:
        return report
    ctx = Context(tenant=tenant, campaign=campaign, now=now)
    passing, stops = run_checks(ctx, due)
    if stops:
        with transaction.atomic():
            record_stops(campaign, stops, job_id)
        for stop in stops:
            report.counts[S.SKIPPED if stop.final else "held"] += 1
            report.stopped_by[stop.check] += 1
    if passing:
        _Sender(tenant, campaign, ctx, job_id, report).send(passing)
    return report


def _batch_rows(message_ids: Sequence[int], job_id: int) -> list[tuple[Any, ...]]:
    return fetch(
        """
        SELECT id, lead_id, step_id, variant_id, mailbox_id, to_email, message_id, attempts,
               scheduled_for, status
        FROM campaigns_message
        WHERE id = ANY(%s) AND job_id = %s AND status = ANY(%s)
        ORDER BY scheduled_for, id
        """,
        [list(message_ids), job_id, [S.QUEUED.value, S.SENDING.value]],
    )


# --- the sender ----------------------------------------------------------------------------------
class _Sender:
    def __init__(
        self, tenant: Tenant, campaign: Campaign, ctx: Context, job_id: int, report: BatchReport
    ) -> None:
        self.tenant, self.campaign, self.ctx = tenant, campaign, ctx
        self.job_id, self.report = job_id, report
        self.templates: dict[int, CompiledTemplate] = {}  # variant id -> parsed once
        self.down: dict[int, str] = {}  # mailbox id -> the connection error that downed it
        self.bases: dict[str, str] = {}
        for name, domain in ctx.domains.items():
            self.bases[name] = links.base_url(
                domain.tracking_host, verified=domain.status == DomainStatus.VERIFIED
            )
        self.default_base = links.base_url(None, verified=False)

    def send(self, items: list[Item]) -> None:
        variant_ids = {i.variant_id for i in items}
        for variant in StepVariant.objects.filter(pk__in=variant_ids).select_related("template"):
            t: EmailTemplate = variant.template
            self.templates[variant.pk] = compile_template(
                t.subject, t.html_body, t.text_body or html_to_text(t.html_body)
            )
        mailbox_ids = sorted({i.mailbox_id for i in items if i.mailbox_id})
        with SmtpPool(tenant=self.tenant, mailbox_ids=mailbox_ids) as pool:
            for chunk in chunks(items, CLAIM_CHUNK):
                held = [i for i in chunk if (i.mailbox_id or 0) in self.down]
                if held:
                    with transaction.atomic():
                        record_stops(
                            self.campaign,
                            [
                                Stop(i, StoppedBy.MAILBOX_HEALTHY, self.down[i.mailbox_id or 0])
                                for i in held
                            ],
                            self.job_id,
                        )
                    self.report.counts["held"] += len(held)
                    self.report.stopped_by[StoppedBy.MAILBOX_HEALTHY] += len(held)
                ready = [i for i in chunk if (i.mailbox_id or 0) not in self.down]
                claimed = self._claim(ready)
                if len(claimed) < len(ready):
                    self._release_unclaimed(ready, claimed)
                if not claimed:
                    if not self._running():
                        return
                    continue
                self._record(self._send_chunk(pool, claimed))

    # claim: one committed statement per chunk, before any byte goes to SMTP
    def _claim(self, items: Sequence[Item]) -> list[Item]:
        if not items:
            return []
        rows = [(i.pk, composer.new_message_id(self._domain_of(i))) for i in items]
        body, params = values(rows, ["bigint", "text"])
        with transaction.atomic():
            got = fetch(
                f"""
                UPDATE campaigns_message AS t
                SET status = %s, attempts = t.attempts + 1,
                    message_id = COALESCE(t.message_id, v.mid), stopped_by = '',
                    stop_reason = '', smtp_code = NULL, smtp_response = '', updated_at = now()
                FROM ({body}) AS v(id, mid)
                WHERE t.id = v.id AND t.status = %s AND t.job_id = %s
                  AND EXISTS (SELECT 1 FROM campaigns_campaign c
                               WHERE c.id = t.campaign_id AND c.status = %s)
                RETURNING t.id, t.message_id, t.attempts
                """,  # noqa: S608 - placeholders only
                [S.SENDING.value, *params, S.QUEUED.value, self.job_id, CampaignStatus.RUNNING],
            )
        by_pk = {pk: (mid, attempts) for pk, mid, attempts in got}
        claimed = []
        for item in items:
            if item.pk in by_pk:
                item.message_id, item.attempts = by_pk[item.pk]
                claimed.append(item)
        return claimed

    def _running(self) -> bool:
        status = Campaign.objects.filter(pk=self.campaign.pk).values_list("status", flat=True)
        return status.first() == CampaignStatus.RUNNING

    def _release_unclaimed(self, ready: Sequence[Item], claimed: Sequence[Item]) -> None:
        if self._running():
            return  # taken by another holder: nothing of ours to release
        got = {i.pk for i in claimed}
        stops = [
            Stop(i, StoppedBy.CAMPAIGN_RUNNING, "The campaign was paused during the batch.")
            for i in ready
            if i.pk not in got
        ]
        with transaction.atomic():
            record_stops(self.campaign, stops, self.job_id)
        self.report.counts["held"] += len(stops)
        self.report.stopped_by[StoppedBy.CAMPAIGN_RUNNING] += len(stops)

    def _domain_of(self, item: Item) -> str:
        return self.ctx.mailboxes[item.mailbox_id or 0].address.rpartition("@")[2]

    # one message
    def _render(self, item: Item) -> Rendered:
        template = self.templates[item.variant_id]
        lead = self.ctx.leads[item.lead_id]
        data: dict[str, Any] = {name: getattr(lead, name) for name in LEAD_FIELDS}
        data["custom"] = lead.custom_fields or {}
        return template.render(lead=data, seed=f"{item.lead_id}:{item.step_id}")

    def _send_chunk(self, pool: SmtpPool, items: Sequence[Item]) -> list[_Result]:
        """The chunk in groups on distinct mailboxes (SmtpPool.deliver_group): one marker
        statement per group between its 354s and its bodies; each group is composed while the
        servers answer the previous group's first commands."""
        groups = list(by_mailbox(items))
        results: list[_Result] = []
        ready = [self._prepare(item) for item in groups[0]] if groups else []
        for k, group in enumerate(groups):
            following = groups[k + 1] if k + 1 < len(groups) else []
            composed: list[_Result | tuple[Outgoing, str]] = []
            compose_next = partial(self._prepare_into, following, composed)
            results += self._send_group(pool, group, ready, compose_next)
            compose_next()  # if nothing went to SMTP, it has not run
            ready = composed
        return results

    def _prepare_into(
        self, items: Sequence[Item], out: list[_Result | tuple[Outgoing, str]]
    ) -> None:
        if not out:
            out.extend(self._prepare(item) for item in items)

    def _send_group(
        self,
        pool: SmtpPool,
        items: Sequence[Item],
        prepared: Sequence[_Result | tuple[Outgoing, str]],
        meanwhile: Callable[[], None],
    ) -> list[_Result]:
        results: list[_Result] = []
        going: list[tuple[Item, Outgoing, str]] = []
        for item, ready in zip(items, prepared, strict=True):
            if isinstance(ready, _Result):
                results.append(ready)
            elif ready[0].mailbox.pk in self.down:  # went down since it was composed
                down = Delivery(Outcome.DEFERRED, None, self.down[ready[0].mailbox.pk])
                results.append(self._outcome(item, ready[0].mailbox, ready[1], down))
            else:
                going.append((item, *ready))
        if not going:
            return results

        def mark(indexes: list[int]) -> set[int]:
            claims = [(going[i][0].pk, going[i][0].attempts) for i in indexes]
            held = mark_data_started(claims, job_id=self.job_id)
            return {i for i in indexes if going[i][0].pk in held}

        deliveries = pool.deliver_group([out for _, out, _ in going], mark, meanwhile)
        for (item, out, subject), delivery in zip(going, deliveries, strict=True):
            if delivery is None:
                continue  # recovered (and maybe claimed again) elsewhere: not ours to record
            results.append(self._outcome(item, out.mailbox, subject, delivery))
        return results

    def _prepare(self, item: Item) -> _Result | tuple[Outgoing, str]:
        """The message ready for SMTP and its subject, or the result that ends it here."""
        mailbox: Mailbox = self.ctx.mailboxes[item.mailbox_id or 0]
        if mailbox.pk in self.down:
            return self._deferred(item, Delivery(Outcome.DEFERRED, None, self.down[mailbox.pk]))
        try:
            rendered = self._render(item)
        except RenderError as exc:
            return _Result(item, S.FAILED, stopped_by=StoppedBy.RENDER, reason=str(exc)[:500])
        domain = self._domain_of(item)
        envelope = composer.Envelope(
            message_pk=item.pk,
            tenant_id=self.tenant.pk,
            message_id=item.message_id or composer.new_message_id(domain),
            from_name=mailbox.display_name,
            from_addr=mailbox.address,
            to_addr=item.to_email,
            reply_to=mailbox.address,
            tracking_base=self.bases.get(domain, self.default_base),
            date=timezone.now(),
            track_opens=self.campaign.track_opens,
            plain_text_only=self.campaign.plain_text_only,
        )
        try:
            raw = composer.compose(rendered, envelope)
        except composer.HeaderInjection as exc:
            return _Result(
                item, S.FAILED, subject=rendered.subject[:998],
                stopped_by=StoppedBy.HEADER_INJECTION, reason=str(exc),
            )  # fmt: skip
        sender = verp.envelope_sender(  # the header From stays the mailbox's
            mailbox, tenant_id=self.tenant.pk, message_pk=item.pk, domains=self.ctx.domains
        )
        return Outgoing(raw, mailbox, sender, item.to_email), rendered.subject[:998]

    def _outcome(self, item: Item, mailbox: Mailbox, subject: str, delivery: Delivery) -> _Result:
        if delivery.outcome == Outcome.ACCEPTED:
            return _Result(item, S.SENT, delivery.code, delivery.response, subject)
        if delivery.outcome == Outcome.REFUSED:
            return _Result(
                item, S.BOUNCED, delivery.code, delivery.response, subject, "smtp",
                delivery.response,
            )  # fmt: skip
        if delivery.outcome == Outcome.LOST:
            return _Result(
                item, S.UNKNOWN, None, delivery.response, subject, "unknown", delivery.response
            )
        if delivery.code is None:
            # Connection-level: the rest of this batch's messages for the mailbox wait.
            self.down[mailbox.pk] = delivery.response or "the mailbox's server is unreachable"
        result = self._deferred(item, delivery)
        result.subject = subject
        return result

    def _deferred(self, item: Item, delivery: Delivery) -> _Result:
        if item.attempts >= MAX_ATTEMPTS:
            return _Result(
                item, S.FAILED, delivery.code, delivery.response, "", "smtp",
                f"Gave up after {item.attempts} attempts: {delivery.response}"[:500],
            )  # fmt: skip
        return _Result(
            item, S.QUEUED, delivery.code, delivery.response, "", "smtp", delivery.response,
            retry_at=timezone.now() + backoff(item.attempts),
        )  # fmt: skip

    # one transaction per chunk
    def _record(self, results: Sequence[_Result]) -> None:
        now = timezone.now()
        day = now.date()
        c = self.campaign.pk
        rows = [
            (
                r.item.pk,
                r.status,
                r.code,
                r.response[:500],
                r.subject,
                r.stopped_by,
                r.reason[:500],
                now if r.status == S.SENT else None,
                now if r.status == S.BOUNCED else None,
                r.retry_at,
                r.item.attempts,
            )
            for r in results
        ]
        increments: list[Bump] = []
        advance: list[tuple[int, int, int, datetime]] = []
        stop: list[tuple[int, int, str]] = []
        bounced: list[Item] = []
        sends: Counter[int] = Counter()
        for r in results:
            i = r.item
            self.report.counts[r.status] += 1
            if r.stopped_by:
                self.report.stopped_by[r.stopped_by] += 1
            if r.status == S.SENT:
                increments += [
                    Bump(c, i.step_id, i.variant_id, day, "sent", 1, i.mailbox_id),
                    Bump(c, i.step_id, i.variant_id, day, "delivered"),
                ]
                advance.append((c, i.lead_id, i.step_id, now))
                sends[i.mailbox_id or 0] += 1
            elif r.status == S.UNKNOWN:
                advance.append((c, i.lead_id, i.step_id, now))
                sends[i.mailbox_id or 0] += 1  # it used the mailbox's quota all the same
            elif r.status == S.BOUNCED:
                increments.append(Bump(c, i.step_id, i.variant_id, day, "bounced", 1, i.mailbox_id))
                stop.append((c, i.lead_id, f"Hard bounce: {r.response}"))
                bounced.append(i)
            elif r.status == S.FAILED:
                increments.append(Bump(c, i.step_id, i.variant_id, day, "failed"))
                stop.append((c, i.lead_id, f"Step failed: {r.reason}"))
        recorded: set[int] = set()  # the messages this job moved (webhooks: only those)
        with transaction.atomic():
            for part in chunks(rows, 1000):
                body, params = values(
                    part,
                    ["bigint", "text", "integer", "text", "text", "text", "text", "timestamptz",
                     "timestamptz", "timestamptz", "integer"],
                )  # fmt: skip
                moved = fetch(
                    f"""
                    UPDATE campaigns_message AS t
                    SET status = v.status, smtp_code = v.code, smtp_response = v.response,
                        subject = CASE WHEN v.subject = '' THEN t.subject ELSE v.subject END,
                        stopped_by = v.stopped_by, stop_reason = v.reason,
                        sent_at = COALESCE(v.sent_at, t.sent_at),
                        bounced_at = COALESCE(v.bounced_at, t.bounced_at),
                        scheduled_for = COALESCE(v.retry_at, t.scheduled_for),
                        job_id = CASE WHEN v.status = %s THEN NULL ELSE t.job_id END,
                        updated_at = %s
                    FROM ({body}) AS v(id, status, code, response, subject, stopped_by, reason,
                                       sent_at, bounced_at, retry_at, attempts)
                    WHERE t.id = v.id AND t.status = %s AND t.job_id = %s
                      AND t.attempts = v.attempts
                    RETURNING t.id, v.status, COALESCE(NULLIF(v.reason, ''), v.response)
                    """,  # noqa: S608 - placeholders only
                    [S.QUEUED.value, now, *params, S.SENDING.value, self.job_id],
                )
                log_outcomes(moved, self.job_id)
                recorded.update(row[0] for row in moved)
            bump(increments)
            advance_enrollments(advance)
            stop_enrollments(stop)
            if bounced:
                suppress_bounced(bounced, now)
            if sends:
                record_sends(sends, at=now)  # the mailboxes' daily counts: deliverability's
            webhook_events.send_outcomes(c, results, recorded, now)


__all__ = ["BatchReport", "accept_unknown", "backoff", "resend_unknown", "send_batch"]
