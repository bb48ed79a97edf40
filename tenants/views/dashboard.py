"""Dashboard pages of a tenant host: home, workspace switcher, settings and API keys."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from penguinmails.errors import Conflict, ValidationFailed
from tenants.auth import logged_in_user
from tenants.forms_team import ApiKeyForm, RenameWorkspaceForm, apply_errors
from tenants.home import panels_for
from tenants.models import ApiKey, Invitation, InvitationStatus, Membership
from tenants.permissions import Area, Level
from tenants.services.access import Principal, access_api_key, access_role, roles_for
from tenants.services.apikeys import create_api_key, revoke_api_key
from tenants.services.handoff import issue_handoff
from tenants.services.tenancy import tenant_url
from tenants.services.workspace import rename_tenant
from tenants.web import area_required, principal_of


@area_required()
def home(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    tenant = principal.tenant
    stats: dict[str, int | None] = {
        "members": Membership.objects.filter(tenant=tenant, is_active=True).count(),
        "pending_invitations": None,
        "active_api_keys": None,
    }
    # Counts of areas the role cannot read are not shown at all.
    if principal.allows(Area.TEAM):
        stats["pending_invitations"] = Invitation.objects.filter(
            tenant=tenant, status=InvitationStatus.PENDING, expires_at__gt=timezone.now()
        ).count()
    if principal.allows(Area.API_KEYS):
        stats["active_api_keys"] = ApiKey.objects.filter(
            tenant=tenant, revoked_at__isnull=True
        ).count()
    return render(
        request,
        "dashboard/home.html",
        {
            "workspace_url": tenant_url(tenant),
            "role": principal.role,
            "stats": stats,
            # The checklist, sending figures and mailbox health: registered by the apps that own
            # them (campaigns.home_panels), since tenants imports no app above it.
            **panels_for(principal),
        },
    )


@login_required
def switch(request: HttpRequest, slug: str) -> HttpResponse:
    """Go to another workspace of the same user, logging them in there through a handoff."""
    target = (
        Membership.objects.select_related("tenant")
        .filter(
            user=logged_in_user(request),
            is_active=True,
            user__is_active=True,
            tenant__slug=slug,
            tenant__is_template=False,
        )
        .first()
    )
    if target is None:
        raise Http404("No such workspace among yours.")
    return redirect(issue_handoff(target.user, target.tenant))


def _settings_context(request: HttpRequest, principal: Principal) -> dict[str, object]:
    roles = roles_for(principal.tenant)
    context: dict[str, object] = {
        "workspace_url": tenant_url(principal.tenant),
        "can_rename": principal.allows(Area.SETTINGS, Level.WRITE),
        "can_see_workspace": principal.allows(Area.SETTINGS),
        "can_see_keys": principal.allows(Area.API_KEYS),
        "can_write_keys": principal.allows(Area.API_KEYS, Level.WRITE),
        "rename_form": RenameWorkspaceForm(initial={"name": principal.tenant.name}),
        "key_form": ApiKeyForm(roles=roles),
        "api_keys": [],
    }
    if context["can_see_keys"]:
        context["api_keys"] = list(
            ApiKey.objects.select_related("role", "created_by").filter(tenant=principal.tenant)
        )
    return context


@area_required(Area.SETTINGS, Area.API_KEYS)
def settings_page(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    return render(request, "dashboard/settings.html", _settings_context(request, principal))


@require_POST
@area_required(Area.SETTINGS, level=Level.WRITE)
def rename(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = RenameWorkspaceForm(request.POST)
    if form.is_valid():
        try:
            rename_tenant(principal, name=form.cleaned_data["name"])
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Workspace renamed.")
            return redirect("dashboard:settings")
    context = _settings_context(request, principal)
    context["rename_form"] = form
    return render(request, "dashboard/settings.html", context, status=400)


@require_POST
@area_required(Area.API_KEYS, level=Level.WRITE)
def api_key_create(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = ApiKeyForm(request.POST, roles=roles_for(principal.tenant))
    if form.is_valid():
        try:
            role = access_role(principal, form.cleaned_data["role"])
            created = create_api_key(
                principal.tenant,
                name=form.cleaned_data["name"],
                role=role,
                actor=principal.user,
                principal=principal,
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            # Rendered, not redirected: the plaintext exists only in this one response.
            response = render(
                request,
                "dashboard/api_key_created.html",
                {"key": created.key, "plaintext": created.plaintext},
            )
            response["Cache-Control"] = "no-store"
            return response
    context = _settings_context(request, principal)
    context["key_form"] = form
    return render(request, "dashboard/settings.html", context, status=400)


@require_POST
@area_required(Area.API_KEYS, level=Level.WRITE)
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    principal = principal_of(request)
    key = access_api_key(principal, key_id)
    try:
        revoke_api_key(key, actor=principal.user, principal=principal)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"API key “{key.name}” revoked; it no longer works.")
    return redirect("dashboard:settings")
