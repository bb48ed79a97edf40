"""The staff admin site: whatever staff change in the admin is written to the audit log.

`StaffAdminSite` is the project's `admin.site` (tenants.adminconfig). Every ModelAdmin registered
on it, by any app, gets `AuditedAdminMixin`, which hooks the admin's own logging points
(log_addition, log_change, log_deletions) and every action: one AuditEvent per staff write, with
the actor, the objects and, for forms, the changed fields' old and new values (secrets hidden).
An event belongs to the tenant its objects belong to, so the tenant sees staff changes to its
data in its own log (docs/audit.md).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from tenants.models import AuditSource, Tenant, User
from tenants.services.audit import record, staff_admin_request

# Field names whose values never go into the log, only the fact that they changed.
SENSITIVE = re.compile(r"password|secret|token|key|hash|credential", re.IGNORECASE)
HIDDEN = "(hidden)"
# An action over more rows than this lists the first ones and the count.
MAX_LISTED = 100

if TYPE_CHECKING:
    _Base = admin.ModelAdmin
else:
    _Base = object

_V = TypeVar("_V", bound=Callable[..., Any])
Action = Callable[[Any, HttpRequest, QuerySet[Any]], HttpResponseBase | None]


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, models.Model):
        return f"{value} (#{value.pk})"
    if isinstance(value, QuerySet | list | tuple | set):
        return [_shown(v) for v in list(value)[:MAX_LISTED]]
    return str(value)[:300]


def form_changes(form: forms.BaseForm) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields a staff form changed."""
    changes: dict[str, list[Any]] = {}
    for name in form.changed_data:
        if SENSITIVE.search(name):
            changes[name] = [HIDDEN, HIDDEN]
        else:
            changes[name] = [_shown(form.initial.get(name)), _shown(form.cleaned_data.get(name))]
    return changes


def change_summary(message: Any) -> str:
    """The admin's change message ("Changed name and status.") as the history page shows it."""
    if not isinstance(message, list):
        return str(message or "")[:500]
    return LogEntry(change_message=json.dumps(message, default=str)).get_change_message()[:500]


def tenant_id_of(obj: models.Model) -> int | None:
    """The tenant an object belongs to: itself, or its foreign key to a tenant."""
    if isinstance(obj, Tenant):
        return int(obj.pk)
    for field in obj._meta.concrete_fields:
        if field.is_relation and field.related_model is Tenant:
            value = getattr(obj, field.attname)
            return int(value) if value is not None else None
    return None


def _described(obj: models.Model) -> dict[str, str]:
    return {"id": str(obj.pk), "repr": str(obj)[:200]}


def record_staff_write(
    request: HttpRequest, action: str, objects: Iterable[models.Model], **detail: Any
) -> None:
    """One event per tenant touched (and one for objects of no tenant)."""
    by_tenant: dict[int | None, list[models.Model]] = defaultdict(list)
    for obj in objects:
        by_tenant[tenant_id_of(obj)].append(obj)
    tenants = Tenant.objects.in_bulk([tid for tid in by_tenant if tid is not None])
    actor = request.user if isinstance(request.user, User) else None
    for tenant_id, members in by_tenant.items():
        record(
            action,
            tenant=tenants.get(tenant_id) if tenant_id is not None else None,
            actor=actor,
            source=AuditSource.ADMIN,
            model=members[0]._meta.label_lower,
            objects=[_described(obj) for obj in members[:MAX_LISTED]],
            count=len(members),
            ip=request.META.get("REMOTE_ADDR", ""),
            **detail,
        )


def _is_intermediate_page(response: HttpResponseBase | None) -> bool:
    """An action that answers with an HTML page is asking for confirmation or input: not done."""
    return (
        isinstance(response, HttpResponse)
        and response.status_code == 200
        and response.get("Content-Type", "").startswith("text/html")
    )


def audited_action(func: Action, name: str) -> Action:
    def run(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        # Listed before the action runs: an action may delete or move its rows.
        selected = list(queryset[: MAX_LISTED + 1])
        total = queryset.count() if len(selected) > MAX_LISTED else len(selected)
        response = func(modeladmin, request, queryset)
        if not _is_intermediate_page(response):
            record_staff_write(request, "admin.action", selected, name=name, selected=total)
        return response

    run.__name__ = getattr(func, "__name__", name)
    return run


class AuditedAdminMixin(_Base):
    """Records staff writes made through a ModelAdmin (its LogEntry hooks and its actions)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj._audit_changes = form_changes(form)
        super().save_model(request, obj, form, change)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        record_staff_write(request, "admin.add", [obj], changes=getattr(obj, "_audit_changes", {}))
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        record_staff_write(
            request,
            "admin.change",
            [obj],
            changes=getattr(obj, "_audit_changes", {}),
            # Django's own summary also names inline rows added, changed or deleted.
            summary=change_summary(message),
        )
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        objects = list(queryset)  # before the rows go; the queryset keeps this result
        entries = super().log_deletions(request, queryset)
        record_staff_write(request, "admin.delete", objects)
        return entries

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request) or {}
        return {
            # Deletions are recorded by log_deletions, row by row.
            name: (func if name == "delete_selected" else audited_action(func, name), n, text)
            for name, (func, n, text) in actions.items()
        }


class StaffAdminSite(admin.AdminSite):
    """`admin.site`: audited ModelAdmins, and a header naming a staging deployment."""

    site_title = "PenguinMails staff"

    @property
    def site_header(self) -> str:  # type: ignore[override]  # read-only here, on purpose
        # Read per request: staff must see at a glance that this is not production.
        return "PenguinMails staff" + (" (staging)" if getattr(settings, "STAGING", False) else "")

    def admin_view(self, view: _V, cacheable: bool = False) -> _V:
        """Every admin page: what services record while it runs is marked as a staff write."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def as_staff(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            with staff_admin_request():
                return inner(request, *args, **kwargs)

        return cast(_V, as_staff)

    def register(
        self,
        model_or_iterable: Any,
        admin_class: type[admin.ModelAdmin[Any]] | None = None,
        **options: Any,
    ) -> None:
        base = admin_class or admin.ModelAdmin
        if not issubclass(base, AuditedAdminMixin):
            base = type(base.__name__, (AuditedAdminMixin, base), {"__module__": base.__module__})
        super().register(model_or_iterable, base, **options)
