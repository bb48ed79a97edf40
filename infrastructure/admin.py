"""Staff admin (public host) for servers, IP addresses and mail servers.

Rows change only through infrastructure.services (the actions call the same services as the
command); secrets (Mailu API token, secret key) are never shown, not even masked fields.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from infrastructure.models import IpAddress, IpTransition, MailServer, VpsInstance, VpsTransition
from infrastructure.providers import ProviderError
from infrastructure.services.ips import quarantine_ip, release_ip
from infrastructure.services.provisioning import (
    discover_ips,
    retry_provisioning,
    terminate_vps,
)
from penguinmails.errors import DomainError
from tenants.auth import logged_in_user


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class VpsTransitionInline(_ReadOnlyInline):
    model = VpsTransition
    fields = ("at", "from_status", "to_status", "reason", "job_id")
    readonly_fields = fields


class IpTransitionInline(_ReadOnlyInline):
    model = IpTransition
    fields = ("at", "from_status", "to_status", "reason")
    readonly_fields = fields


def _each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, rows: QuerySet, do: object, verb: str
) -> None:
    done = 0
    for row in rows:
        try:
            do(row)  # type: ignore[operator]
            done += 1
        except (DomainError, ProviderError) as exc:
            modeladmin.message_user(
                request, f"{row}: {getattr(exc, 'message', exc)}", messages.ERROR
            )
    if done:
        modeladmin.message_user(request, f"{verb} {done} row(s).", messages.SUCCESS)


@admin.register(VpsInstance)
class VpsInstanceAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "provider", "size", "main_ip", "status", "monthly_cost")
    list_filter = ("status", "provider", "size")
    search_fields = ("name", "hostname", "provider_id", "main_ip", "tenant__slug")
    # Never the Mailu token nor the secret key.
    fields = (
        "tenant",
        "name",
        "hostname",
        "provider",
        "provider_id",
        "size",
        "location",
        "main_ip",
        "status",
        "ip_quota",
        "monthly_cost_cents",
        "user_data_applied",
        "needs_attention",
        "last_error",
        "polls",
        "step_job_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [VpsTransitionInline]
    actions = ["retry", "terminate", "discover"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # servers are asked for with `infra provision` / the dashboard

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # terminate instead: the server costs money until it is gone

    @admin.action(description="Retry provisioning (failed servers)")
    def retry(self, request: HttpRequest, queryset: QuerySet[VpsInstance]) -> None:
        actor = logged_in_user(request)
        _each(self, request, queryset, lambda v: retry_provisioning(v, actor=actor), "Retried")

    @admin.action(description="Terminate at the provider")
    def terminate(self, request: HttpRequest, queryset: QuerySet[VpsInstance]) -> None:
        actor = logged_in_user(request)
        _each(self, request, queryset, lambda v: terminate_vps(v, actor=actor), "Terminating")

    @admin.action(description="Discover IPs ordered in the provider's portal")
    def discover(self, request: HttpRequest, queryset: QuerySet[VpsInstance]) -> None:
        actor = logged_in_user(request)
        _each(self, request, queryset, lambda v: discover_ips(v, actor=actor), "Checked")


class QuarantineForm(forms.Form):
    reason = forms.CharField(max_length=500, label="Why is it quarantined?")


@admin.register(IpAddress)
class IpAddressAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "tenant",
        "vps",
        "is_primary",
        "role",
        "status",
        "ptr_set",
        "reputation_score",
        "monthly_cost",
    )
    list_filter = ("status", "role", "is_primary", "ptr_set")
    search_fields = ("address", "ptr_hostname", "tenant__slug", "vps__name")
    readonly_fields = (
        "vps",
        "tenant",
        "address",
        "is_primary",
        "role",
        "status",
        "ptr_hostname",
        "ptr_set",
        "quarantine_reason",
        "replaced_by",
        "monthly_cost_cents",
        "created_at",
    )
    fields = (*readonly_fields, "reputation_score")
    inlines = [IpTransitionInline]
    actions = ["quarantine", "release"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Quarantine (asks for a reason)")
    def quarantine(
        self, request: HttpRequest, queryset: QuerySet[IpAddress]
    ) -> HttpResponse | None:
        form = QuarantineForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            actor = logged_in_user(request)
            _each(
                self,
                request,
                queryset,
                lambda ip: quarantine_ip(ip, reason=reason, actor=actor),
                "Quarantined",
            )
            return None
        return render(
            request,
            "infrastructure/admin_quarantine.html",
            {
                **self.admin_site.each_context(request),
                "title": "Quarantine IP addresses",
                "ips": queryset,
                "form": form,
                "action": "quarantine",
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Release")
    def release(self, request: HttpRequest, queryset: QuerySet[IpAddress]) -> None:
        actor = logged_in_user(request)
        _each(self, request, queryset, lambda ip: release_ip(ip, actor=actor), "Released")


@admin.register(MailServer)
class MailServerAdmin(admin.ModelAdmin):
    list_display = ("hostname", "tenant", "kind", "smtp_host", "smtp_port", "status")
    list_filter = ("kind", "status")
    search_fields = ("hostname", "tenant__slug")
    # The API token is never shown.
    fields = (
        "tenant",
        "vps",
        "kind",
        "hostname",
        "api_url",
        "smtp_host",
        "smtp_port",
        "imap_host",
        "imap_port",
        "status",
        "last_error",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
