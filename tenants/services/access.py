"""Access helpers: the one easy way to fetch a tenant's objects with a permission check.

Each takes the acting membership (or API key principal) and refuses with a domain exception, so
the dashboard, the API and commands enforce the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from penguinmails.errors import NotFound, PermissionDenied, TenantSuspended
from tenants.models import ApiKey, Membership, Role, Tenant, User
from tenants.permissions import Area, BuiltinRole, Level


@dataclass(frozen=True)
class Principal:
    """Who is acting in a tenant: a member through the dashboard, or an API key."""

    tenant: Tenant
    role: Role
    user: User | None
    membership: Membership | None = None
    api_key: ApiKey | None = None

    def allows(self, area: Area | str, level: Level | str = Level.READ) -> bool:
        if self.membership is not None and not self.membership.is_active:
            return False
        return self.role.allows(area, level)

    @property
    def is_owner(self) -> bool:
        return self.membership is not None and self.membership.is_owner


def principal_for_membership(membership: Membership) -> Principal:
    return Principal(
        tenant=membership.tenant, role=membership.role, user=membership.user, membership=membership
    )


def principal_for_api_key(key: ApiKey) -> Principal:
    return Principal(tenant=key.tenant, role=key.role, user=key.created_by, api_key=key)


def operator_principal(tenant: Tenant) -> Principal:
    """Ops acting in one tenant from a management command: owner-level rights there, no user.

    Only commands run by whoever operates the platform use this; nothing reachable over HTTP does.
    """
    return Principal(
        tenant=tenant, role=Role.objects.get(tenant=None, slug=BuiltinRole.OWNER), user=None
    )


def require(principal: Principal, area: Area | str, level: Level | str = Level.READ) -> None:
    """Refuse unless the principal's role grants `level` on `area`.

    Writes in a suspended tenant are refused too: its data stays readable, nothing changes.
    """
    if not principal.allows(area, level):
        raise PermissionDenied(
            f"Your role ({principal.role.name}) does not allow {Level(level).label.lower()} "
            f"access to {Area(area).label.lower()}."
        )
    if level == Level.WRITE and principal.tenant.is_suspended:
        raise TenantSuspended(
            "This workspace is suspended; changes are refused. Contact support to reactivate it."
        )


def active_membership(user: User, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated or not user.is_active:
        return None
    return (
        Membership.objects.select_related("role", "tenant", "user")
        .filter(user=user, tenant=tenant, is_active=True)
        .first()
    )


def access_membership(principal: Principal, membership_id: int) -> Membership:
    """A membership of the principal's own tenant, or NotFound (never another tenant's)."""
    require(principal, Area.TEAM, Level.READ)
    found = (
        Membership.objects.select_related("user", "role")
        .filter(tenant=principal.tenant, pk=membership_id)
        .first()
    )
    if found is None:
        raise NotFound("No such member.")
    return found


def access_role(principal: Principal, role_id: int) -> Role:
    """A built-in role or one of the principal's tenant's custom roles."""
    found = Role.objects.filter(pk=role_id).first()
    if found is None or (found.tenant_id is not None and found.tenant_id != principal.tenant.pk):
        raise NotFound("No such role.")
    return found


def access_api_key(principal: Principal, key_id: int) -> ApiKey:
    require(principal, Area.API_KEYS, Level.READ)
    found = ApiKey.objects.filter(tenant=principal.tenant, pk=key_id).first()
    if found is None:
        raise NotFound("No such API key.")
    return found


def roles_for(tenant: Tenant) -> list[Role]:
    from django.db.models import Q

    return list(Role.objects.filter(Q(tenant=None) | Q(tenant=tenant)))
