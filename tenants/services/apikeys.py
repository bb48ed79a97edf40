"""Tenant API keys: created and shown once, stored as a SHA-256, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from penguinmails.errors import Conflict, PermissionDenied, ValidationFailed
from tenants import signals
from tenants.models import ApiKey, Role, Tenant, User
from tenants.permissions import Area, BuiltinRole, Level
from tenants.services import audit
from tenants.services.access import Principal, require

KEY_PREFIX = "pm_"


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    plaintext: str  # shown to the user once, never stored


def _hash(secret: str) -> str:
    # The secret carries 256 bits of entropy, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    tenant: Tenant,
    *,
    name: str,
    role: Role | None = None,
    actor: User | None = None,
    principal: Principal | None = None,
) -> NewApiKey:
    """Create a key. With a principal (dashboard, API), its role must allow API key writes."""
    if principal is not None:
        require(principal, Area.API_KEYS, Level.WRITE)
    signals.api_access_requested.send(sender=Tenant, tenant=tenant)  # billing: plan feature
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "A key name is required.", fields={"name": ["Give the key a name of 1-100 characters."]}
        )
    if role is None:
        role = Role.objects.get(tenant=None, slug=BuiltinRole.MEMBER)
    if role.tenant_id not in (None, tenant.pk):
        raise ValidationFailed(
            "Unknown role.", fields={"role": ["No such role in this workspace."]}
        )
    if role.is_builtin and role.slug == BuiltinRole.OWNER:
        raise ValidationFailed(
            "API keys cannot have the owner role.", fields={"role": ["Choose admin or lower."]}
        )
    if principal is not None:
        # A key acts with its role: minting one must not grant more than the minter has.
        beyond = [a.label for a in Area if not principal.role.allows(a, role.level(a))]
        if beyond:
            raise PermissionDenied(
                f"Your role ({principal.role.name}) cannot create a key with more access than "
                f"it has ({', '.join(beyond)})."
            )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    plaintext = f"{KEY_PREFIX}{prefix}_{secret}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            key_hash=_hash(plaintext),
            role=role,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit.record("api_key.created", tenant=tenant, actor=actor, key_id=key.pk, name=name)
    return NewApiKey(key=key, plaintext=plaintext)


def revoke_api_key(
    key: ApiKey, *, actor: User | None = None, principal: Principal | None = None
) -> ApiKey:
    if principal is not None:
        require(principal, Area.API_KEYS, Level.WRITE)
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is not None:
            raise Conflict("This API key is already revoked.")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit.record("api_key.revoked", tenant=locked.tenant, actor=actor, key_id=locked.pk)
    return locked


def authenticate_api_key(plaintext: str) -> ApiKey | None:
    """The active key matching `plaintext`, or None. Constant-time on the hash."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    try:
        prefix, _secret = plaintext[len(KEY_PREFIX) :].split("_", 1)
    except ValueError:
        return None
    key = (
        ApiKey.objects.select_related("tenant", "role", "created_by")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, _hash(plaintext)):
        return None
    # Coarse last-used stamp: one write a minute per key at most.
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
