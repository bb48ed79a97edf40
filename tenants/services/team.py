"""Members and roles of a tenant: change a role, deactivate, reactivate, custom roles."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.text import slugify

from penguinmails.errors import Conflict, PermissionDenied, ValidationFailed
from tenants.models import Membership, Role
from tenants.permissions import Area, BuiltinRole, Level, normalize_permissions
from tenants.services import audit
from tenants.services.access import Principal, require


def _active_owner_count(membership: Membership) -> int:
    return Membership.objects.filter(
        tenant=membership.tenant, is_active=True, role__tenant=None, role__slug=BuiltinRole.OWNER
    ).count()


def _guard_owner_rules(principal: Principal, target: Membership, new_role: Role | None) -> None:
    making_owner = (
        new_role is not None and new_role.is_builtin and new_role.slug == BuiltinRole.OWNER
    )
    if (target.is_owner or making_owner) and not principal.is_owner:
        raise PermissionDenied("Only an owner can change an owner or make someone owner.")
    if target.is_owner and target.is_active and _active_owner_count(target) <= 1:
        raise Conflict("A workspace must keep at least one active owner.")


@transaction.atomic
def change_member_role(principal: Principal, membership: Membership, *, role: Role) -> Membership:
    require(principal, Area.TEAM, Level.WRITE)
    if (
        role.tenant_id not in (None, principal.tenant.pk)
        or membership.tenant_id != principal.tenant.pk
    ):
        raise ValidationFailed(
            "Unknown role.", fields={"role": ["No such role in this workspace."]}
        )
    target = Membership.objects.select_for_update().select_related("role").get(pk=membership.pk)
    if target.role_id == role.pk:
        return target
    if not (role.is_builtin and role.slug == BuiltinRole.OWNER):
        _guard_owner_rules(principal, target, role)
    elif not principal.is_owner:
        raise PermissionDenied("Only an owner can make someone owner.")
    previous = target.role.slug
    target.role = role
    target.save(update_fields=["role"])
    audit.record(
        "member.role_changed",
        tenant=principal.tenant,
        actor=principal.user,
        member=target.user.email,
        **{"from": previous, "to": role.slug},
    )
    return target


@transaction.atomic
def deactivate_member(principal: Principal, membership: Membership) -> Membership:
    require(principal, Area.TEAM, Level.WRITE)
    target = Membership.objects.select_for_update().select_related("role").get(pk=membership.pk)
    if not target.is_active:
        raise Conflict("This member is already deactivated.")
    if principal.user is not None and target.user_id == principal.user.pk:
        raise Conflict("You cannot deactivate yourself.")
    _guard_owner_rules(principal, target, None)
    target.is_active = False
    target.deactivated_at = timezone.now()
    target.save(update_fields=["is_active", "deactivated_at"])
    audit.record(
        "member.deactivated",
        tenant=principal.tenant,
        actor=principal.user,
        member=target.user.email,
    )
    return target


@transaction.atomic
def reactivate_member(principal: Principal, membership: Membership) -> Membership:
    require(principal, Area.TEAM, Level.WRITE)
    target = Membership.objects.select_for_update().get(pk=membership.pk)
    if target.is_active:
        raise Conflict("This member is already active.")
    target.is_active = True
    target.deactivated_at = None
    target.save(update_fields=["is_active", "deactivated_at"])
    audit.record(
        "member.reactivated",
        tenant=principal.tenant,
        actor=principal.user,
        member=target.user.email,
    )
    return target


def _clean_role_fields(name: str, permissions: object) -> tuple[str, dict[str, str]]:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = ["Give the role a name of 1-100 characters."]
    try:
        perms = normalize_permissions(permissions)
    except ValueError as exc:
        errors["permissions"] = [str(exc)]
        perms = {}
    if errors:
        raise ValidationFailed("Invalid role.", fields=errors)
    return name, perms


@transaction.atomic
def create_role(
    principal: Principal, *, name: str, permissions: object, description: str = ""
) -> Role:
    require(principal, Area.TEAM, Level.WRITE)
    name, perms = _clean_role_fields(name, permissions)
    slug = slugify(name)[:60] or "role"
    taken = Role.objects.filter(Q(tenant=None) | Q(tenant=principal.tenant), slug=slug).exists()
    if taken:
        raise ValidationFailed("Role exists.", fields={"name": [f"A role named '{name}' exists."]})
    role = Role.objects.create(
        tenant=principal.tenant,
        slug=slug,
        name=name,
        permissions=perms,
        description=(description or "")[:300],
    )
    audit.record(
        "role.created", tenant=principal.tenant, actor=principal.user, role=slug, permissions=perms
    )
    return role


@transaction.atomic
def update_role(
    principal: Principal,
    role: Role,
    *,
    name: str | None = None,
    permissions: object = None,
    description: str | None = None,
) -> Role:
    require(principal, Area.TEAM, Level.WRITE)
    if role.is_builtin or role.tenant_id != principal.tenant.pk:
        raise PermissionDenied("Built-in roles cannot be changed.")
    new_name, perms = _clean_role_fields(
        role.name if name is None else name,
        role.permissions if permissions is None else permissions,
    )
    role.name = new_name
    role.permissions = perms
    if description is not None:
        role.description = description[:300]
    role.save(update_fields=["name", "permissions", "description"])
    audit.record(
        "role.updated",
        tenant=principal.tenant,
        actor=principal.user,
        role=role.slug,
        permissions=perms,
    )
    return role


@transaction.atomic
def delete_role(principal: Principal, role: Role) -> None:
    require(principal, Area.TEAM, Level.WRITE)
    if role.is_builtin or role.tenant_id != principal.tenant.pk:
        raise PermissionDenied("Built-in roles cannot be deleted.")
    if role.memberships.exists():
        raise Conflict("Members still have this role; give them another role first.")
    audit.record("role.deleted", tenant=principal.tenant, actor=principal.user, role=role.slug)
    try:
        with transaction.atomic():
            role.delete()
    except ProtectedError:
        # API keys and invitations (past ones too) keep the role they were given.
        raise Conflict(
            "API keys or invitations still refer to this role, so it cannot be deleted."
        ) from None
