"""Staff admin (public host only: /admin/ is not in the tenant URLconf).

Staff read everything; the writes that matter go through the same services as the dashboard and
commands (suspend, reactivate, revoke). Tenants are created by signup or `manage.py tenants
create`, never here, because creation clones a schema.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from penguinmails.errors import DomainError
from penguinmails.history.admin import HistoryPanel
from tenants.auth import logged_in_user
from tenants.models import ApiKey, AuditEvent, Domain, Invitation, Membership, Role, Tenant, User
from tenants.services.apikeys import revoke_api_key
from tenants.services.tenancy import reactivate_tenant, real_tenants, suspend_tenant
from tenants.support import available_panels, look_into_tenant


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff, changed only through services (actions), never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Tenants ----------------------------------------------------------------------------------


class SupportLookForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=500,
        help_text="Why you are looking (a ticket, what the customer asked). The tenant reads "
        "this in its audit log.",
    )
    panels = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, help_text="What to look at (read-only)."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = list(available_panels().items())
        panels = self.fields["panels"]
        assert isinstance(panels, forms.MultipleChoiceField)
        panels.choices = choices
        panels.initial = [key for key, _ in choices]


class DomainInline(admin.TabularInline):
    model = Domain
    fields = ("domain", "is_primary")
    readonly_fields = ("domain", "is_primary")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Host names follow the slug; custom hosts come with their own verification flow.
        return False


@admin.register(Tenant)
class TenantAdmin(HistoryPanel, admin.ModelAdmin):
    list_display = ("name", "slug", "status", "member_count", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "slug")
    ordering = ("name",)
    fields = (
        "name",
        "slug",
        "schema_name",
        "status",
        "suspended_reason",
        "created_at",
        "support_access",
        "history",
    )
    readonly_fields = (
        "slug",
        "schema_name",
        "status",
        "suspended_reason",
        "created_at",
        "support_access",
        "history",
    )
    inlines = (DomainInline,)
    actions = ("suspend", "reactivate")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        # The template tenant is an implementation detail: never listed, never suspended.
        return real_tenants().annotate(
            _member_count=Count("memberships", filter=Q(memberships__is_active=True))
        )

    @admin.display(description="Support access")
    def support_access(self, obj: Tenant) -> str:
        url = reverse("admin:tenants_tenant_support", args=[obj.pk])
        return format_html(
            '<a href="{}">Look into this tenant\'s data</a> (read-only; you state a reason, '
            "and the tenant sees the look in its audit log)",
            url,
        )

    def get_urls(self) -> list[URLPattern]:
        support = path(
            "<path:object_id>/support/",
            self.admin_site.admin_view(self.support_view),
            name="tenants_tenant_support",
        )
        return [support, *super().get_urls()]

    def support_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Look into a tenant: a reason first, then read-only panels (tenants.support)."""
        tenant = self.get_object(request, object_id)
        if tenant is None or not self.has_view_permission(request, tenant):
            raise Http404("No such tenant.")
        form = SupportLookForm(request.POST if request.method == "POST" else None)
        look = None
        if form.is_valid():
            try:
                look = look_into_tenant(
                    tenant,
                    actor=logged_in_user(request),
                    reason=form.cleaned_data["reason"],
                    panels=form.cleaned_data["panels"],
                )
            except DomainError as exc:
                for name, errors in exc.fields.items():
                    form.add_error(name if name in form.fields else None, errors)
                if not exc.fields:
                    form.add_error(None, exc.message)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Look into {tenant.name}",
            "opts": self.model._meta,
            "tenant": tenant,
            "form": form,
            "look": look,
        }
        status = 400 if request.method == "POST" and look is None else 200
        return render(request, "admin/tenants/support.html", context, status=status)

    @admin.display(description="Members", ordering="_member_count")
    def member_count(self, obj: Tenant) -> int:
        return int(getattr(obj, "_member_count", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting drops the tenant's schema and all its data: not a click in the admin.
        return False

    @admin.action(description="Suspend selected tenants", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        actor = logged_in_user(request)
        for tenant in queryset:
            try:
                suspend_tenant(tenant, actor=actor, reason="Suspended by platform staff.")
            except DomainError as exc:
                self.message_user(request, f"{tenant.slug}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{tenant.slug}: suspended.", messages.SUCCESS)

    @admin.action(description="Reactivate selected tenants", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        actor = logged_in_user(request)
        for tenant in queryset:
            try:
                reactivate_tenant(tenant, actor=actor)
            except DomainError as exc:
                self.message_user(request, f"{tenant.slug}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{tenant.slug}: reactivated.", messages.SUCCESS)


# --- Users ------------------------------------------------------------------------------------


class StaffUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email


class StaffUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    fields = ("tenant", "role", "is_active", "joined_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    list_display = (
        "email",
        "full_name",
        "is_active",
        "is_staff",
        "email_verified_at",
        "last_login",
    )
    list_filter = (
        "is_active",
        "is_staff",
        "is_superuser",
        ("email_verified_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("email", "full_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    inlines = (MembershipInline,)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "email_verified_at")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # A new user has no memberships yet; they come from signup or an invitation.
        return super().get_inline_instances(request, obj) if obj is not None else []

    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )


# --- Memberships, roles, invitations ----------------------------------------------------------


class RoleFilter(admin.SimpleListFilter):
    """Built-in roles by name, and every tenant's custom roles as one choice."""

    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        builtin = [(r.slug, r.name) for r in Role.objects.filter(tenant=None)]
        return [*builtin, ("custom", "Custom role")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        if value == "custom":
            return queryset.filter(role__tenant__isnull=False)
        return queryset.filter(role__tenant__isnull=True, role__slug=value)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    # Role changes and deactivation are the tenant's own decisions (team page, owner rules).
    list_display = ("user", "tenant", "role", "is_active", "joined_at")
    list_filter = (RoleFilter, "is_active")
    search_fields = ("user__email", "tenant__slug", "tenant__name")
    list_select_related = ("user", "tenant", "role")


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    # Built-in roles are fixed by migration; custom ones belong to their tenant's team page.
    list_display = ("name", "slug", "tenant", "is_builtin", "created_at")
    list_filter = ("is_builtin",)
    search_fields = ("name", "slug", "tenant__slug")
    list_select_related = ("tenant",)


@admin.register(Invitation)
class InvitationAdmin(HistoryPanel, ReadOnlyAdmin):
    list_display = ("email", "tenant", "role", "status", "created_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("email", "tenant__slug")
    list_select_related = ("tenant", "role")
    exclude = ("token_hash",)
    readonly_fields = ("history",)


# --- API keys and audit -----------------------------------------------------------------------


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "masked", "role", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "tenant__slug")
    list_select_related = ("tenant", "role")
    # The hash is useless to staff and would help an offline guess: never shown.
    fields = ("name", "tenant", "masked", "role", "created_by", "created_at", "last_used_at")
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description="Key")
    def masked(self, obj: ApiKey) -> str:
        return f"pm_{obj.prefix}_…"

    # Change permission (Django's default check) is kept for the revoke action; every field
    # is read-only, so the form itself changes nothing.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = logged_in_user(request)
        for key in queryset.select_related("tenant"):
            try:
                revoke_api_key(key, actor=actor)
            except DomainError as exc:
                self.message_user(request, f"{key}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{key}: revoked.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    # Append-only: no add, change or delete here (ReadOnlyAdmin), in the model or in PostgreSQL.
    list_display = ("created_at", "action", "source", "tenant", "actor_email")
    list_filter = ("source", "action")
    search_fields = ("action", "tenant__slug", "actor_email")
    list_select_related = ("tenant", "actor")
    date_hierarchy = "created_at"
