"""Lead lists and suppressions, as the API and commands manage them (docs/leads.md).

A list groups leads for campaigns; a lead may be in many lists. Adding and removing members
takes lead ids and reports the ids it did not know. Suppressions (addresses or whole domains
never to email) are listed, added and removed here; bounces and unsubscribes add them too.
Every function checks Area.LEADS and runs in the tenant's schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet

from campaigns.models import CampaignStatus, Lead, LeadList, Suppression, SuppressionReason
from campaigns.services import leads
from penguinmails.errors import Conflict, NotFound, ValidationFailed
from tenants.db import require_schema
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

MAX_MEMBERS_PER_CALL = 10_000


def _check(principal: Principal, level: Level) -> None:
    require(principal, Area.LEADS, level)
    require_schema(principal.tenant, "list services")


def list_lists(principal: Principal) -> QuerySet[LeadList]:
    _check(principal, Level.READ)
    return LeadList.objects.annotate(lead_count=Count("leads")).order_by("name")


def access_list(principal: Principal, list_id: int | str) -> LeadList:
    _check(principal, Level.READ)
    try:
        found = list_lists(principal).filter(pk=int(list_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such list.")
    return found


def create_list(principal: Principal, *, name: str, description: str = "") -> LeadList:
    """A new list; runs of spaces in the name become one."""
    return leads.create_list(
        principal, name=" ".join(str(name or "").split()), description=description
    )


def update_list(principal: Principal, lead_list: LeadList, *, changes: dict[str, Any]) -> LeadList:
    _check(principal, Level.WRITE)
    unknown = sorted(set(changes) - {"name", "description"})
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", fields={k: ["A list has a name and a description."] for k in unknown}
        )
    with transaction.atomic():
        locked = LeadList.objects.select_for_update().get(pk=lead_list.pk)
        if "name" in changes:
            name = " ".join(str(changes["name"] or "").split())
            if not name or len(name) > 200:
                raise ValidationFailed(
                    "Name the list (200 characters at most).",
                    fields={"name": ["Required, 200 characters at most."]},
                )
            if LeadList.objects.filter(name=name).exclude(pk=locked.pk).exists():
                raise Conflict(
                    f"A list named {name!r} exists.", fields={"name": ["Already exists."]}
                )
            locked.name = name
        if "description" in changes:
            locked.description = str(changes["description"] or "")[:500]
        locked.save()
        audit("leads.list_update", tenant=principal.tenant, actor=principal.user, list_id=locked.pk)
    return locked


def delete_list(principal: Principal, lead_list: LeadList) -> None:
    """Delete a list (its leads stay). A list a campaign still targets cannot go while that
    campaign is live."""
    _check(principal, Level.WRITE)
    live = lead_list.campaigns.exclude(
        status__in=(CampaignStatus.COMPLETED, CampaignStatus.ARCHIVED)
    ).values_list("name", flat=True)
    if live:
        raise Conflict(f"Campaigns still use this list: {', '.join(live)}.")
    with transaction.atomic():
        audit(
            "leads.list_delete", tenant=principal.tenant, actor=principal.user, name=lead_list.name
        )
        lead_list.delete()


def _lead_ids(raw: object) -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("Give lead ids.", fields={"lead_ids": ["A non-empty list of ids."]})
    if len(raw) > MAX_MEMBERS_PER_CALL:
        message = f"At most {MAX_MEMBERS_PER_CALL:,} ids per call."
        raise ValidationFailed(message, fields={"lead_ids": [message]})
    try:
        return sorted({int(v) for v in raw})
    except (TypeError, ValueError):
        raise ValidationFailed("Ids are numbers.", fields={"lead_ids": ["Numbers only."]}) from None


def change_members(
    principal: Principal, lead_list: LeadList, *, add: bool, lead_ids: object
) -> dict[str, Any]:
    """Add (or remove) leads by id; returns how many changed and the ids that are not leads."""
    _check(principal, Level.WRITE)
    ids = _lead_ids(lead_ids)
    known = set(Lead.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    through = LeadList.leads.through
    with transaction.atomic():
        if add:
            before = through.objects.filter(leadlist_id=lead_list.pk).count()
            through.objects.bulk_create(
                [through(leadlist_id=lead_list.pk, lead_id=i) for i in sorted(known)],
                ignore_conflicts=True,
            )
            changed = through.objects.filter(leadlist_id=lead_list.pk).count() - before
        else:
            changed, _ = through.objects.filter(
                leadlist_id=lead_list.pk, lead_id__in=known
            ).delete()
        audit(
            "leads.list_add" if add else "leads.list_remove",
            tenant=principal.tenant,
            actor=principal.user,
            list_id=lead_list.pk,
            count=changed,
        )
    return {"changed": changed, "unknown_ids": unknown}


# --- suppressions --------------------------------------------------------------------------------
def list_suppressions(
    principal: Principal, *, q: str = "", reason: str = ""
) -> QuerySet[Suppression]:
    _check(principal, Level.READ)
    rows = Suppression.objects.all()
    if q:
        rows = rows.filter(value__icontains=q.strip().lower())
    if reason:
        rows = rows.filter(reason=reason)
    return rows


def access_suppression(principal: Principal, suppression_id: int | str) -> Suppression:
    _check(principal, Level.READ)
    try:
        found = Suppression.objects.filter(pk=int(suppression_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such suppression.")
    return found


def add_suppressions(principal: Principal, values: Iterable[object]) -> list[Suppression]:
    """Suppress addresses or domains by hand (all or nothing: one bad value refuses the call)."""
    _check(principal, Level.WRITE)
    raw = list(values)
    if not raw or not all(isinstance(v, str) for v in raw) or len(raw) > 1000:
        raise ValidationFailed(
            "Give up to 1,000 addresses or domains.", fields={"values": ["A list of strings."]}
        )
    with transaction.atomic():
        return [
            leads.add_suppression(
                principal,
                tenant=principal.tenant,
                value=str(v),
                reason=SuppressionReason.MANUAL,
                source=principal.user.email if principal.user else "api",
            )
            for v in raw
        ]


def remove_suppression(
    principal: Principal, suppression: Suppression, *, force: bool = False
) -> None:
    """Lift a suppression. Hard bounces and complaints protect the sender's reputation: lifting
    one needs `force` (the API's `?force=true`), or Conflict says why not."""
    _check(principal, Level.WRITE)
    if suppression.reason in (SuppressionReason.BOUNCED, SuppressionReason.COMPLAINT) and not force:
        raise Conflict(
            f"{suppression.value} is suppressed for a {suppression.get_reason_display().lower()}; "
            "lift it only if you know the address works now (force=true)."
        )
    with transaction.atomic():
        audit(
            "leads.unsuppress",
            tenant=principal.tenant,
            actor=principal.user,
            value=suppression.value,
            reason=suppression.reason,
        )
        suppression.delete()
