"""Staff admin (public host) for servers, IP addresses and mail servers.

Rows change only through infrastructure.services (the actions call the same services as the
command); secrets (Mailu API token, secret key) are never shown, not even masked fields. "Add"
on mail servers registers a shared server (a tenant's own comes with its VPS).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html, format_html_join

from infrastructure.models import (
    IpAddress,
    MailServer,
    PostfixOverrides,
    SenderIpBinding,
    VpsInstance,
    VpsResourceSample,
)
from infrastructure.providers import ProviderError
from infrastructure.services import resources
from infrastructure.services.ips import quarantine_ip, release_ip
from infrastructure.services.mailservers import (
    register_shared_mail_server,
    retire_shared_mail_server,
)
from infrastructure.services.provisioning import (
    discover_ips,
    retry_provisioning,
    terminate_vps,
)
from penguinmails.errors import DomainError
from penguinmails.history.admin import HistoryPanel
from tenants.auth import logged_in_user


def _pct(value: float | None, over: bool) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}%" + (" (over)" if over else "")


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
class VpsInstanceAdmin(HistoryPanel, admin.ModelAdmin):
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
        "resources",
        "history",
    )
    readonly_fields = fields
    actions = ["retry", "terminate", "discover"]

    @admin.display(description="Resources (newest first)")
    def resources(self, vps: VpsInstance) -> str:
        """The plan's thresholds and the recent readings (services.resources)."""
        limits = resources.thresholds_for(vps.tenant)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{s.taken_at:%Y-%m-%d %H:%M}",
                    *(_pct(getattr(s, f"{n}_percent"), n in s.over) for n in resources.FIGURES),
                    s.error or s.get_source_display(),
                )
                for s in resources.history(vps, limit=24)
            ),
        )
        return format_html(
            "<p>Plan thresholds: CPU {}%, memory {}%, disk {}%</p><table><tr><th>At</th>"
            "<th>CPU</th><th>Memory</th><th>Disk</th><th>Source</th></tr>{}</table>",
            limits.cpu,
            limits.memory,
            limits.disk,
            rows or format_html("<tr><td colspan=5>{}</td></tr>", "Not read yet."),
        )

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
class IpAddressAdmin(HistoryPanel, admin.ModelAdmin):
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
        "history",
    )
    fields = (*readonly_fields, "reputation_score")
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


class SharedMailServerForm(forms.Form):
    """The fields of register_shared_mail_server; it checks them (and Mailu's answer) itself."""

    hostname = forms.CharField(max_length=253, help_text="The server's name, e.g. mail.example.com")
    mailu_api_url = forms.CharField(
        max_length=300, label="Mailu API URL", help_text="e.g. https://mail.example.com/api/v1"
    )
    # Never rendered back, not even after a refused submit.
    api_token = forms.CharField(
        max_length=1024, label="Mailu API token", widget=forms.PasswordInput(render_value=False)
    )
    smtp_host = forms.CharField(max_length=253, label="SMTP host")
    smtp_port = forms.IntegerField(label="SMTP port", initial=587)
    imap_host = forms.CharField(max_length=253, label="IMAP host")
    imap_port = forms.IntegerField(label="IMAP port", initial=993)


@admin.register(MailServer)
class MailServerAdmin(HistoryPanel, admin.ModelAdmin):
    list_display = ("hostname", "owner", "kind", "smtp_host", "smtp_port", "status")
    list_filter = ("shared", "kind", "status")
    search_fields = ("hostname", "tenant__slug")
    # The API token is never shown.
    fields = (
        "shared",
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
        "history",
    )
    readonly_fields = fields
    actions = ["retire"]

    @admin.display(description="Owner", ordering="tenant__slug")
    def owner(self, server: MailServer) -> str:
        return "shared (platform)" if server.shared else str(server.tenant)

    def add_view(
        self,
        request: HttpRequest,
        form_url: str = "",
        extra_context: dict[str, object] | None = None,
    ) -> HttpResponse:
        """Register a shared server through the service; its refusals show on the form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SharedMailServerForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                server = register_shared_mail_server(
                    **form.cleaned_data, actor=logged_in_user(request)
                )
            except DomainError as exc:
                _show_errors(form, exc)
            else:
                self.message_user(
                    request,
                    f"Registered the shared mail server {server.hostname}.",
                    messages.SUCCESS,
                )
                return redirect("admin:infrastructure_mailserver_changelist")
        # AdminForm and AdminErrorList render any form; django-stubs type them for ModelForm.
        adminform = helpers.AdminForm(
            form,  # type: ignore[arg-type]
            [(None, {"fields": list(form.fields)})],
            {},
            model_admin=self,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Register a shared mail server",
            "adminform": adminform,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + adminform.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),  # type: ignore[arg-type]
            "preserved_filters": self.get_preserved_filters(request),
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    @admin.action(
        description="Retire (shared servers: no new mailboxes go on them)", permissions=["change"]
    )
    def retire(self, request: HttpRequest, queryset: QuerySet[MailServer]) -> None:
        actor = logged_in_user(request)
        _each(
            self,
            request,
            queryset,
            lambda server: retire_shared_mail_server(server, actor=actor),
            "Retired",
        )


def _show_errors(form: forms.Form, exc: DomainError) -> None:
    placed = False
    for field, problems in exc.fields.items():
        if field in form.fields:
            for problem in problems:
                form.add_error(field, problem)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


@admin.register(PostfixOverrides)
class PostfixOverridesAdmin(admin.ModelAdmin):
    """Read only: what each server's /mailu/overrides/postfix should hold (services.ip_binding).
    Staff copy it to the server until a channel can write files there (docs/infrastructure.md)."""

    list_display = ("vps", "digest", "rendered_at")
    search_fields = ("vps__name", "vps__hostname")
    fields = ("vps", "digest", "rendered_at", "files")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SenderIpBinding)
class SenderIpBindingAdmin(admin.ModelAdmin):
    """Read only: which IP each domain or mailbox sends from (changed by services only)."""

    list_display = ("sender", "ip", "tenant", "pinned", "updated_at")
    list_filter = ("pinned",)
    search_fields = ("sender", "ip__address", "tenant__slug")
    fields = ("tenant", "sender", "ip", "pinned", "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(VpsResourceSample)
class VpsResourceSampleAdmin(admin.ModelAdmin):
    """Servers' CPU, memory and disk readings (services.resources); read-only."""

    list_display = (
        "vps",
        "taken_at",
        "cpu_percent",
        "memory_percent",
        "disk_percent",
        "over",
        "source",
        "error",
    )
    list_filter = ("source",)
    search_fields = ("vps__name", "vps__hostname", "vps__tenant__slug")
    date_hierarchy = "taken_at"
    fields = (
        "vps",
        "taken_at",
        "source",
        "error",
        "cpu_percent",
        "memory_percent",
        "disk_percent",
        "memory_total_bytes",
        "disk_total_bytes",
        "disk_mountpoint",
        "cpu_count",
        "over",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
