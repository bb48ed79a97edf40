"""Reading leads: lists, filters, `access_*` helpers scoped to the tenant."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

from campaigns.models import Lead, LeadImport
from penguinmails.errors import NotFound
from tenants.db import require_schema
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require


def _in_schema(tenant: Tenant) -> None:
    require_schema(tenant, "lead services")


def _actor(principal: Principal | None) -> User | None:
    return principal.user if principal is not None else None


def list_leads(
    principal: Principal,
    *,
    q: str = "",
    status: str = "",
    tag: str = "",
    list_id: int | str | None = None,
) -> QuerySet[Lead]:
    """The tenant's leads, searched (email, name, company) and filtered."""
    require(principal, Area.LEADS, Level.READ)
    _in_schema(principal.tenant)
    leads = Lead.objects.all()
    return filter_leads(leads, q=q, status=status, tag=tag, list_id=list_id)


def filter_leads(
    leads: QuerySet[Lead],
    *,
    q: str = "",
    status: str = "",
    tag: str = "",
    list_id: int | str | None = None,
) -> QuerySet[Lead]:
    q = (q or "").strip()
    if q:
        words = q.split()
        for word in words[:5]:
            leads = leads.filter(
                Q(email__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(company__icontains=word)
            )
    if status:
        leads = leads.filter(status=status)
    if tag:
        leads = leads.filter(tags__contains=[tag.strip().lower()])
    if list_id not in (None, ""):
        try:
            leads = leads.filter(lists__id=int(list_id))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            leads = leads.none()
    return leads


def access_lead(principal: Principal, lead_id: int | str) -> Lead:
    require(principal, Area.LEADS, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = Lead.objects.filter(pk=int(lead_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such lead.")
    return found


def access_import(principal: Principal, import_id: int | str) -> LeadImport:
    require(principal, Area.LEADS, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = LeadImport.objects.select_related("lead_list").filter(pk=int(import_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such import.")
    return found


def all_tags(principal: Principal) -> list[str]:
    require(principal, Area.LEADS, Level.READ)
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT unnest(tags) AS t FROM campaigns_lead ORDER BY t LIMIT 200")
        return [row[0] for row in cursor.fetchall()]
