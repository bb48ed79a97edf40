"""Team pages of a tenant host: members, invitations, roles. Every write calls a service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from penguinmails.errors import Conflict, PermissionDenied, ValidationFailed
from penguinmails.web import perform
from tenants.forms_team import CustomRoleForm, InviteForm, RoleChoiceForm, apply_errors
from tenants.models import Membership, Role
from tenants.permissions import Area, BuiltinRole, Level
from tenants.services.access import Principal, access_membership, access_role, roles_for
from tenants.services.invitations import (
    access_invitation,
    invite_member,
    pending_invitations,
    revoke_invitation,
)
from tenants.services.team import (
    change_member_role,
    create_role,
    deactivate_member,
    delete_role,
    reactivate_member,
    update_role,
)
from tenants.web import area_required, principal_of


def _team_context(principal: Principal, invite_form: InviteForm | None = None) -> dict[str, object]:
    roles = roles_for(principal.tenant)
    members = list(
        Membership.objects.select_related("user", "role")
        .filter(tenant=principal.tenant)
        .order_by("-is_active", "user__email")
    )
    return {
        "members": members,
        "roles": roles,
        "invitations": pending_invitations(principal),
        "can_write": principal.allows(Area.TEAM, Level.WRITE),
        "invite_form": invite_form or InviteForm(roles=roles, allow_owner=principal.is_owner),
    }


@area_required(Area.TEAM)
def team(request: HttpRequest) -> HttpResponse:
    return render(request, "team/team.html", _team_context(principal_of(request)))


@require_POST
@area_required(Area.TEAM, level=Level.WRITE)
def invite(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    roles = roles_for(principal.tenant)
    form = InviteForm(request.POST, roles=roles, allow_owner=principal.is_owner)
    if form.is_valid():
        try:
            role = access_role(principal, form.cleaned_data["role"])
            invitation = invite_member(principal, email=form.cleaned_data["email"], role=role)
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("dashboard:team")
    return render(request, "team/team.html", _team_context(principal, form), status=400)


@require_POST
@area_required(Area.TEAM, level=Level.WRITE)
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    principal = principal_of(request)
    invitation = access_invitation(principal, invitation_id)
    perform(
        request,
        lambda: revoke_invitation(principal, invitation),
        success=f"Invitation to {invitation.email} revoked.",
    )
    return redirect("dashboard:team")


@require_POST
@area_required(Area.TEAM, level=Level.WRITE)
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Change a member's role; answers htmx with the member's row, plain forms with a redirect."""
    principal = principal_of(request)
    membership = access_membership(principal, membership_id)
    form = RoleChoiceForm(request.POST, roles=roles_for(principal.tenant))
    error = ""
    if not form.is_valid():
        error = "Choose one of the roles listed."
    else:
        try:
            role = access_role(principal, form.cleaned_data["role"])
            membership = change_member_role(principal, membership, role=role)
        except (ValidationFailed, Conflict) as exc:
            error = exc.message
        except PermissionDenied as exc:
            # Owner rules (only owners touch owners): explain in place instead of a 403 page
            # when the acting role does have team write access.
            error = exc.message
    if request.htmx:  # type: ignore[attr-defined]
        membership = access_membership(principal, membership_id)
        return render(
            request,
            "team/_member_row.html",
            {
                "m": membership,
                "roles": roles_for(principal.tenant),
                "can_write": True,
                "row_error": error,
                "row_saved": not error,
            },
            status=409 if error else 200,
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{membership.user.email} is now {membership.role.name}.")
    return redirect("dashboard:team")


@require_POST
@area_required(Area.TEAM, level=Level.WRITE)
def member_deactivate(request: HttpRequest, membership_id: int) -> HttpResponse:
    principal = principal_of(request)
    membership = access_membership(principal, membership_id)
    perform(
        request,
        lambda: deactivate_member(principal, membership),
        success=f"{membership.user.email} can no longer use this workspace.",
        refused=(Conflict, PermissionDenied),
    )
    return redirect("dashboard:team")


@require_POST
@area_required(Area.TEAM, level=Level.WRITE)
def member_reactivate(request: HttpRequest, membership_id: int) -> HttpResponse:
    principal = principal_of(request)
    membership = access_membership(principal, membership_id)
    perform(
        request,
        lambda: reactivate_member(principal, membership),
        success=f"{membership.user.email} is active again.",
    )
    return redirect("dashboard:team")


@area_required(Area.TEAM)
def roles(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    all_roles = list(
        Role.objects.filter(Q(tenant=None) | Q(tenant=principal.tenant)).annotate(
            member_count=Count(
                "memberships",
                filter=Q(memberships__tenant=principal.tenant, memberships__is_active=True),
            )
        )
    )
    # Built-in roles from most to least powerful, then custom roles by name.
    rank = {slug: i for i, slug in enumerate(BuiltinRole.values)}
    all_roles.sort(key=lambda r: (not r.is_builtin, rank.get(r.slug, 0), r.name.lower()))
    rows: list[dict[str, Any]] = [
        {"role": role, "levels": [role.level(area) for area in Area]} for role in all_roles
    ]
    return render(
        request,
        "team/roles.html",
        {
            "builtin_rows": [row for row in rows if row["role"].is_builtin],
            "custom_rows": [row for row in rows if not row["role"].is_builtin],
            "area_list": list(Area),
            "can_write": principal.allows(Area.TEAM, Level.WRITE),
        },
    )


@area_required(Area.TEAM, level=Level.WRITE)
def role_create(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = CustomRoleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            role = create_role(
                principal,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                permissions=form.permissions(),
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Role “{role.name}” created.")
            return redirect("dashboard:roles")
    status = 400 if request.method == "POST" else 200
    return render(request, "team/role_form.html", {"form": form, "role": None}, status=status)


@area_required(Area.TEAM, level=Level.WRITE)
def role_edit(request: HttpRequest, role_id: int) -> HttpResponse:
    principal = principal_of(request)
    role = access_role(principal, role_id)
    if role.is_builtin:
        raise PermissionDenied("Built-in roles cannot be changed.")
    form = CustomRoleForm(request.POST or None, initial=CustomRoleForm.initial_for(role))
    if request.method == "POST" and form.is_valid():
        try:
            update_role(
                principal,
                role,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                permissions=form.permissions(),
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Role “{role.name}” saved.")
            return redirect("dashboard:roles")
    status = 400 if request.method == "POST" else 200
    return render(request, "team/role_form.html", {"form": form, "role": role}, status=status)


@require_POST
@area_required(Area.TEAM, level=Level.WRITE)
def role_delete(request: HttpRequest, role_id: int) -> HttpResponse:
    principal = principal_of(request)
    role = access_role(principal, role_id)
    name = role.name
    perform(request, lambda: delete_role(principal, role), success=f"Role “{name}” deleted.")
    return redirect("dashboard:roles")
