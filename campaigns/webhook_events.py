"""What campaigns tells integrators through outgoing webhooks (webhooks.services.delivery.emit;
the event names and payloads are listed in docs/webhooks.md). Each function is one line at the
place where the thing happens, in that place's transaction, so an event goes out only for a
change that committed; when no endpoint of the workspace subscribes to the event, nothing is
built and no query runs (the subscription check is cached per process)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from campaigns.models import Campaign, EventKind, LeadImport, Message, MessageEvent
from webhooks.events import Event
from webhooks.services.delivery import emit, emit_many
from webhooks.services.subscriptions import has_subscribers


class _Item(Protocol):
    pk: int
    lead_id: int
    step_id: int
    mailbox_id: int | None
    to_email: str


class _Result(Protocol):
    item: Any
    status: str
    code: int | None
    response: str


def send_outcomes(
    campaign_id: int, results: Sequence[_Result], moved: Collection[int], at: dt.datetime
) -> None:
    """message.sent and message.bounced (an SMTP rejection) for the batch's recorded results."""
    for event, status in ((Event.MESSAGE_SENT, "sent"), (Event.MESSAGE_BOUNCED, "bounced")):
        if not has_subscribers(event):
            continue
        payloads = [
            _message(r.item, campaign_id) | _outcome(status, r, at)
            for r in results
            if r.status == status and r.item.pk in moved
        ]
        emit_many(event, payloads)


def _message(item: _Item, campaign_id: int) -> dict[str, Any]:
    return {
        "message_id": item.pk,
        "campaign_id": campaign_id,
        "lead_id": item.lead_id,
        "step_id": item.step_id,
        "mailbox_id": item.mailbox_id,
        "to": item.to_email,
    }


def _outcome(status: str, result: _Result, at: dt.datetime) -> dict[str, Any]:
    if status == "sent":
        return {"sent_at": at}
    return {"bounced_at": at, "source": "smtp", "smtp_code": result.code,
            "reason": result.response[:300]}  # fmt: skip


def tracking(events: Iterable[MessageEvent]) -> None:
    """message.opened and message.clicked, one per recorded open or click (machine ones say so)."""
    names: dict[str, str] = {
        EventKind.OPEN: Event.MESSAGE_OPENED,
        EventKind.CLICK: Event.MESSAGE_CLICKED,
    }
    wanted = {kind: name for kind, name in names.items() if has_subscribers(name)}
    if not wanted:
        return
    by_event: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        if e.kind in wanted:
            data = {"message_id": e.message_id, "campaign_id": e.campaign_id, "at": e.at,
                    "machine": e.is_machine}  # fmt: skip
            if e.kind == EventKind.CLICK:
                data["url"] = e.url
            by_event.setdefault(wanted[e.kind], []).append(data)
    for name, payloads in by_event.items():
        emit_many(name, payloads)


INBOUND = {
    "reply": Event.REPLY_RECEIVED,
    "bounce": Event.MESSAGE_BOUNCED,
    "complaint": Event.MESSAGE_COMPLAINED,
}


def inbound(kind: str, message: Message, at: dt.datetime, outcome: str) -> None:
    """reply.received, message.bounced (a bounce read from the mailbox), message.complained."""
    event = INBOUND.get(kind)
    if event is None or not has_subscribers(event):
        return
    emit(event, {
        "message_id": message.pk, "campaign_id": message.campaign_id, "lead_id": message.lead_id,
        "to": message.to_email, "at": at, "source": "inbound", "outcome": outcome,
    })  # fmt: skip


def unsubscribed(message_id: int, row: Mapping[str, Any], email: str, at: dt.datetime,
                 source: str) -> None:  # fmt: skip
    if has_subscribers(Event.LEAD_UNSUBSCRIBED):
        emit(Event.LEAD_UNSUBSCRIBED, {
            "lead_id": row["lead_id"], "email": email, "message_id": message_id,
            "campaign_id": row["campaign_id"], "at": at, "source": source,
        })  # fmt: skip


def campaign_completed(campaign: Campaign, reason: str) -> None:
    if has_subscribers(Event.CAMPAIGN_COMPLETED):
        emit(Event.CAMPAIGN_COMPLETED, {"campaign_id": campaign.pk, "name": campaign.name,
                                        "reason": reason})  # fmt: skip


def import_finished(lead_import: LeadImport) -> None:
    if has_subscribers(Event.IMPORT_FINISHED):
        emit(Event.IMPORT_FINISHED, {
            "import_id": lead_import.pk, "status": lead_import.status,
            "file": lead_import.original_name, "list_id": lead_import.lead_list_id,
            "processed": lead_import.processed, "created": lead_import.created,
            "updated": lead_import.updated, "skipped": lead_import.skipped,
            "failed": lead_import.failed, "error": lead_import.error_message,
            "finished_at": lead_import.finished_at,
        })  # fmt: skip
