"""A campaign's settings: DEFAULTS, their validation (`_cleaned` and its helpers) and the writes
that create a draft or change it (`create_campaign`, `update_campaign`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from typing import Any

from django.db import IntegrityError, transaction

from campaigns.models import Campaign, LeadList
from campaigns.services.campaigns.access import _actor, _email, _fail, _in_schema, _lock_draft
from campaigns.services.leads import validate_timezone
from deliverability.models import Mailbox
from penguinmails.errors import ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

MAX_NAME_CHARS = 200
MAX_GAP_SECONDS = 24 * 3600

DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "use_lead_timezone": False,
    "window_days": [0, 1, 2, 3, 4],
    "window_start": time(9),
    "window_end": time(17),
    "daily_cap": 500,
    "min_gap_seconds": 60,
    "max_gap_seconds": 180,
    "stop_on_reply": True,
    "delay_on_out_of_office": False,
    "track_opens": False,  # docs/sending.md, "Content": the pixel is opt-in
    "plain_text_only": False,
    "start_at": None,
    "lead_list_ids": [],
    "mailbox_ids": [],
}


def _ids(raw: Iterable[Any] | None) -> list[int] | None:
    try:
        return sorted({int(v) for v in (raw or [])})
    except (TypeError, ValueError):
        return None


def _cleaned(data: dict[str, Any], *, exclude_pk: int | None = None) -> dict[str, Any]:
    """The settings to store, or ValidationFailed naming every field's problem at once."""
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    name = " ".join(str(data.get("name") or "").split())
    if not name:
        errors["name"] = ["Give the campaign a name."]
    elif len(name) > MAX_NAME_CHARS:
        errors["name"] = [f"At most {MAX_NAME_CHARS} characters."]
    elif Campaign.objects.filter(name__iexact=name).exclude(pk=exclude_pk or 0).exists():
        errors["name"] = [f"A campaign named “{name}” already exists."]
    out["name"] = name
    try:
        out["timezone"] = validate_timezone(str(data.get("timezone") or "")) or "UTC"
    except ValueError as exc:
        errors["timezone"] = [str(exc)]
    out["use_lead_timezone"] = bool(data.get("use_lead_timezone"))
    out["stop_on_reply"] = bool(data.get("stop_on_reply"))
    out["delay_on_out_of_office"] = bool(data.get("delay_on_out_of_office"))
    out["track_opens"] = bool(data.get("track_opens"))
    out["plain_text_only"] = bool(data.get("plain_text_only"))
    _clean_window(data, out, errors)
    _clean_pacing(data, out, errors)
    start_at = data.get("start_at")
    if start_at is not None and (not isinstance(start_at, datetime) or start_at.tzinfo is None):
        errors["start_at"] = ["Give a date and time with a timezone."]
    out["start_at"] = start_at
    _clean_targets(data, out, errors)
    if errors:
        raise _fail(errors, "The campaign was not saved")
    return out


def _clean_window(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """`_cleaned`'s sending window: the days of the week and the times of day."""
    days = _ids(data.get("window_days"))
    if not days or not set(days) <= set(range(7)):
        errors["window_days"] = ["Pick at least one day (0 = Monday … 6 = Sunday)."]
    out["window_days"] = days or []
    start, end = data.get("window_start"), data.get("window_end")
    if not isinstance(start, time):
        errors["window_start"] = ["Give a start time such as 09:00."]
    if not isinstance(end, time):
        errors["window_end"] = ["Give an end time such as 17:00."]
    elif isinstance(start, time) and start >= end:
        errors["window_end"] = ["The window must end after it starts (same day)."]
    out["window_start"], out["window_end"] = start, end


def _clean_pacing(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """`_cleaned`'s pacing: the daily cap and the gaps between sends."""
    for field, low in (("daily_cap", 1), ("min_gap_seconds", 0), ("max_gap_seconds", 0)):
        try:
            value = int(data.get(field))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            errors[field] = ["Give a whole number."]
            continue
        if value < low or value > (MAX_GAP_SECONDS if "gap" in field else 1_000_000):
            errors[field] = [f"Out of range (at least {low})."]
        out[field] = value
    if (
        "min_gap_seconds" in out
        and "max_gap_seconds" in out
        and out["min_gap_seconds"] > out["max_gap_seconds"]
    ):
        errors["max_gap_seconds"] = ["The largest gap must be at least the smallest."]


def _clean_targets(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """`_cleaned`'s lead lists and mailboxes: lists of ids that exist."""
    for field, model in (("lead_list_ids", LeadList), ("mailbox_ids", Mailbox)):
        ids = _ids(data.get(field))
        if ids is None:
            errors[field] = ["Give a list of ids."]
            continue
        known = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [i for i in ids if i not in known]
        if unknown:
            errors[field] = [f"Unknown ids: {', '.join(map(str, unknown))}."]
        out[field] = ids


def _apply(campaign: Campaign, fields: dict[str, Any]) -> None:
    lists, mailboxes = fields.pop("lead_list_ids"), fields.pop("mailbox_ids")
    for key, value in fields.items():
        setattr(campaign, key, value)
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:  # a concurrent save of the same name won
        message = f"A campaign named “{campaign.name}” already exists."
        raise ValidationFailed(message, fields={"name": [message]}) from None
    campaign.lead_lists.set(lists)
    campaign.mailboxes.set(mailboxes)


def current_settings(campaign: Campaign) -> dict[str, Any]:
    values = {key: getattr(campaign, key) for key in DEFAULTS if not key.endswith("_ids")}
    values["name"] = campaign.name
    values["lead_list_ids"] = list(campaign.lead_lists.values_list("pk", flat=True))
    values["mailbox_ids"] = list(campaign.mailboxes.values_list("pk", flat=True))
    return values


def create_campaign(principal: Principal, *, name: str, **settings: Any) -> Campaign:
    """A new draft; settings left out take DEFAULTS."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        fields = _cleaned({**DEFAULTS, **settings, "name": name})
        campaign = Campaign(created_by_email=_email(principal))
        _apply(campaign, fields)
        audit(
            "campaign.created",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=campaign.pk,
            name=campaign.name,
        )
    return campaign


def update_campaign(principal: Principal, campaign: Campaign, **changes: Any) -> Campaign:
    """Change a draft's settings (the fields not given keep their values)."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        locked = _lock_draft(campaign)
        fields = _cleaned({**current_settings(locked), **changes}, exclude_pk=locked.pk)
        _apply(locked, fields)
        audit(
            "campaign.updated",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=locked.pk,
            fields=sorted(changes),
        )
    return locked
