"""Tenants, their host names, users, roles, memberships, invitations, API keys and audit log.

All of these live in the public schema: a user may belong to several tenants, and staff see every
tenant from the admin.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

from penguinmails.states import StateMachine
from tenants.permissions import LEVEL_RANK, Area, BuiltinRole, Level


class TenantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


TENANT_TRANSITIONS: dict[str, set[str]] = {
    TenantStatus.ACTIVE: {TenantStatus.SUSPENDED},
    TenantStatus.SUSPENDED: {TenantStatus.ACTIVE},
}


class Tenant(TenantMixin):
    """A workspace: an agency or a sales team, with its own PostgreSQL schema."""

    # Annotated because django-tenants has no stubs: TenantMixin is untyped, so the django-stubs
    # plugin cannot infer these fields' types as it does on a plain Model.
    name: models.CharField[str, str] = models.CharField(max_length=200)
    slug: models.SlugField[str, str] = models.SlugField(max_length=40, unique=True)
    status: models.CharField[str, str] = models.CharField(
        max_length=20, choices=TenantStatus.choices, default=TenantStatus.ACTIVE, db_index=True
    )
    suspended_reason: models.CharField[str, str] = models.CharField(max_length=500, blank=True)
    # The hidden tenant whose schema new tenants are cloned from (see tenants.services).
    is_template: models.BooleanField[bool, bool] = models.BooleanField(
        default=False, editable=False
    )
    settings = models.JSONField(default=dict, blank=True)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, editable=False
    )
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now=True)

    # Schemas are cloned from the template by tenants.services.create_tenant.
    auto_create_schema = False
    auto_drop_schema = True

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_suspended(self) -> bool:
        return self.status == TenantStatus.SUSPENDED

    @property
    def host(self) -> str:
        return f"{self.slug}.{settings.BASE_DOMAIN}"


TENANT_STATES = StateMachine(Tenant, TENANT_TRANSITIONS)


class Domain(DomainMixin):
    """A host name that routes to a tenant (`<slug>.<BASE_DOMAIN>`, later custom hosts)."""

    def __str__(self) -> str:
        return self.domain


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified_at", timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with email; belongs to tenants through memberships."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    # Platform staff: may use the Django admin on the public host.
    is_staff = models.BooleanField(default=False)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Role(models.Model):
    """A named permission set. Built-in roles have no tenant; custom roles belong to one."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="roles"
    )
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    permissions = models.JSONField(default=dict)
    is_builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-is_builtin", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug"], condition=Q(tenant__isnull=True), name="role_builtin_slug_unique"
            ),
            models.UniqueConstraint(fields=["tenant", "slug"], name="role_tenant_slug_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def level(self, area: Area | str) -> str:
        return str(self.permissions.get(str(area), Level.NONE))

    def allows(self, area: Area | str, level: Level | str = Level.READ) -> bool:
        return LEVEL_RANK[Level(self.level(area))] >= LEVEL_RANK[Level(level)]


class Membership(models.Model):
    """A user's place in a tenant, with one role (seed: TENANT_USERS)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    is_active = models.BooleanField(default=True)
    joined_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant.slug} as {self.role.slug}"

    @property
    def is_owner(self) -> bool:
        return self.role.is_builtin and self.role.slug == BuiltinRole.OWNER

    def allows(self, area: Area | str, level: Level | str = Level.READ) -> bool:
        return self.is_active and self.role.allows(area, level)


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"


class Invitation(models.Model):
    """An emailed invitation to join a tenant with a role. The token is stored hashed."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=20, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=Q(status=InvitationStatus.PENDING),
                name="invitation_pending_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant.slug}"

    @property
    def is_usable(self) -> bool:
        return self.status == InvitationStatus.PENDING and self.expires_at > timezone.now()


# Expiry is a time (`expires_at`), not a status: an expired invitation stays pending until it is
# accepted (refused: unusable), revoked, or replaced by a new one for the same address (revoked).
INVITATION_TRANSITIONS: dict[str, set[str]] = {
    InvitationStatus.PENDING: {InvitationStatus.ACCEPTED, InvitationStatus.REVOKED},
    InvitationStatus.ACCEPTED: set(),
    InvitationStatus.REVOKED: set(),
}
INVITATION_STATES = StateMachine(Invitation, INVITATION_TRANSITIONS)


class ApiKey(models.Model):
    """A tenant API key. Only a SHA-256 of the secret is kept; the key is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # Public, non-secret part used to find the row: `pm_<prefix>_<secret>`.
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (pm_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditSource(models.TextChoices):
    """Where an audited action came from; the tenant's log marks the staff ones."""

    APP = "app", "Workspace"  # a service write: dashboard, API, command, job
    ADMIN = "admin", "Platform staff (admin)"  # an add, change, delete or action in the admin
    SUPPORT = "support", "Platform staff (support access)"  # a read-only look into the tenant


class AppendOnly(Exception):
    """An audit row was to be changed or deleted: the log only grows."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """No set-based update or delete: PostgreSQL refuses them too (migration 0003's trigger)."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("Audit events are never updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit events are never deleted.")


class AuditEvent(models.Model):
    """What happened, who did it, in which tenant: one row per named service write, per staff
    change in the admin and per support look. Append-only: saved once, never changed or deleted
    (the model, its queryset and a database trigger refuse; the admin is read-only)."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    # SET_NULL when a user is deleted (the only update the trigger lets through); the address
    # stays in actor_email so the log still says who.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    source = models.CharField(
        max_length=10, choices=AuditSource.choices, default=AuditSource.APP, db_index=True
    )
    action = models.CharField(max_length=100, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("Audit events are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit events are never deleted.")

    @property
    def by_staff(self) -> bool:
        return self.source != AuditSource.APP
