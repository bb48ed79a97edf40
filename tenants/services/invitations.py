"""Invitations by email: invite, revoke, accept.

The emailed link carries a random token; only its SHA-256 is stored, so a database leak cannot be
turned into working invitation links. The link points at the public host, where the invitee may
not have a session yet.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from penguinmails import states
from penguinmails.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    TenantSuspended,
    ValidationFailed,
)
from penguinmails.mail import send_transactional
from tenants import signals
from tenants.models import Invitation, InvitationStatus, Membership, Role, Tenant, User
from tenants.permissions import Area, BuiltinRole, Level
from tenants.services import audit, login_guard
from tenants.services.access import Principal, require
from tenants.services.tenancy import public_url

INVITATION_TTL = timedelta(days=7)


class InvitationUnusable(DomainError):
    """The link was used, revoked or has expired."""

    status_code = 410
    code = "invitation_unusable"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_email(email: str) -> str:
    try:
        # No deliverability (DNS) check: the machines may be offline, and the mail itself is
        # the real test of the address.
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed("Invalid email address.", fields={"email": [str(exc)]}) from exc


@transaction.atomic
def invite_member(principal: Principal, *, email: str, role: Role) -> Invitation:
    """Invite `email` to the principal's workspace with `role`; the email goes out on commit."""
    require(principal, Area.TEAM, Level.WRITE)
    tenant = principal.tenant
    address = _clean_email(email)
    if role.tenant_id not in (None, tenant.pk):
        raise ValidationFailed(
            "Unknown role.", fields={"role": ["No such role in this workspace."]}
        )
    if role.is_builtin and role.slug == BuiltinRole.OWNER and not principal.is_owner:
        raise PermissionDenied("Only an owner can invite another owner.")
    if Membership.objects.filter(tenant=tenant, user__email=address, is_active=True).exists():
        raise ValidationFailed(
            "Already a member.", fields={"email": [f"{address} is already a member here."]}
        )
    pending = (
        Invitation.objects.select_for_update()
        .filter(tenant=tenant, email=address, status=InvitationStatus.PENDING)
        .first()
    )
    if pending is not None:
        if pending.expires_at > timezone.now():
            raise ValidationFailed(
                "Already invited.",
                fields={"email": [f"{address} already has a pending invitation; revoke it first."]},
            )
        # An expired invitation still holds the "one pending per address" slot: retire it.
        states.transition(
            pending,
            InvitationStatus.REVOKED,
            reason="expired; replaced by a new invitation",
            actor=principal.user,
        )
    signals.member_seat_requested.send(sender=Tenant, tenant=tenant)  # billing: plan seats
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=address,
        role=role,
        token_hash=hash_token(token),
        invited_by=principal.user,
        expires_at=timezone.now() + INVITATION_TTL,
    )
    audit.record(
        "invitation.created",
        tenant=tenant,
        actor=principal.user,
        invitation_id=invitation.pk,
        email=address,
        role=role.slug,
    )
    inviter = principal.user.get_full_name() if principal.user is not None else tenant.name
    send_transactional(
        "invitation",
        to=address,
        variables={
            "invite_url": public_url(f"/invite/{token}/"),
            "tenant_name": tenant.name,
            "inviter_name": inviter,
            "role_name": role.name,
        },
        idempotency_key=f"invitation-{invitation.pk}",
    )
    return invitation


def access_invitation(principal: Principal, invitation_id: int) -> Invitation:
    """An invitation of the principal's own workspace, or NotFound."""
    require(principal, Area.TEAM, Level.READ)
    found = (
        Invitation.objects.select_related("role")
        .filter(tenant=principal.tenant, pk=invitation_id)
        .first()
    )
    if found is None:
        raise NotFound("No such invitation.")
    return found


def pending_invitations(principal: Principal) -> list[Invitation]:
    require(principal, Area.TEAM, Level.READ)
    return list(
        Invitation.objects.select_related("role", "invited_by").filter(
            tenant=principal.tenant, status=InvitationStatus.PENDING, expires_at__gt=timezone.now()
        )
    )


@transaction.atomic
def revoke_invitation(principal: Principal, invitation: Invitation) -> Invitation:
    require(principal, Area.TEAM, Level.WRITE)
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None or locked.tenant_id != principal.tenant.pk:
        raise NotFound("No such invitation.")
    if locked.status != InvitationStatus.PENDING:
        raise Conflict(f"This invitation is already {locked.get_status_display().lower()}.")
    states.transition(locked, InvitationStatus.REVOKED, reason="revoked", actor=principal.user)
    audit.record(
        "invitation.revoked",
        tenant=principal.tenant,
        actor=principal.user,
        invitation_id=locked.pk,
        email=locked.email,
    )
    return locked


def find_invitation(token: str) -> Invitation | None:
    """The invitation a link's token belongs to (in any state), or None."""
    if not token:
        return None
    return (
        Invitation.objects.select_related("tenant", "role", "invited_by")
        .filter(token_hash=hash_token(token))
        .first()
    )


def unusable_reason(invitation: Invitation | None) -> str | None:
    """Why this invitation cannot be accepted, in words for the invitee; None if it can."""
    if invitation is None:
        return "This invitation link is not valid. Check that you copied the whole link."
    if invitation.status == InvitationStatus.ACCEPTED:
        return "This invitation has already been used. Log in to your workspace instead."
    if invitation.status == InvitationStatus.REVOKED:
        return "This invitation was withdrawn. Ask the workspace's admins for a new one."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired. Ask the workspace's admins for a new one."
    return None


@transaction.atomic
def accept_invitation(
    token: str, *, password: str, full_name: str = "", client_ip: str = "unknown"
) -> Membership:
    """Accept an invitation: join as the existing account (its password proves it is theirs)
    or create the account. Returns the active membership.

    The invitation row is locked, so two concurrent accepts make one membership.
    """
    found = find_invitation(token)
    invitation = (
        Invitation.objects.select_for_update().filter(pk=found.pk).first() if found else None
    )
    reason = unusable_reason(invitation)
    if reason is not None or invitation is None:
        raise InvitationUnusable(reason or "This invitation link is not valid.")
    tenant = invitation.tenant
    if tenant.is_suspended:
        raise TenantSuspended("This workspace is suspended; it cannot take new members now.")
    user = User.objects.filter(email__iexact=invitation.email).first()
    if user is not None:
        # The password check spends the same brute-force budget as the login form does.
        reservation = login_guard.reserve_attempt(email=user.email, ip=client_ip)
        if not reservation.allowed or not user.is_active or not user.check_password(password or ""):
            raise ValidationFailed(
                "Wrong password.",
                fields={
                    "password": [
                        "That is not the password of this account, or there were too many "
                        "attempts; try again later."
                    ]
                },
            )
        login_guard.record_success(reservation)
    else:
        user = _create_invited_user(invitation.email, password=password, full_name=full_name)
    membership = Membership.objects.select_for_update().filter(tenant=tenant, user=user).first()
    if membership is None:
        membership = Membership.objects.create(tenant=tenant, user=user, role=invitation.role)
    elif not membership.is_active:
        membership.is_active = True
        membership.deactivated_at = None
        membership.role = invitation.role
        membership.save(update_fields=["is_active", "deactivated_at", "role"])
    # An active member keeps their current role: an invitation never demotes anyone.
    states.transition(
        invitation,
        InvitationStatus.ACCEPTED,
        reason="accepted",
        actor=user,
        accepted_at=timezone.now(),
    )
    audit.record(
        "invitation.accepted",
        tenant=tenant,
        actor=user,
        invitation_id=invitation.pk,
        role=membership.role.slug,
    )
    return membership


def _create_invited_user(email: str, *, password: str, full_name: str) -> User:
    full_name = (full_name or "").strip()
    errors: dict[str, list[str]] = {}
    if not full_name or len(full_name) > 200:
        errors["full_name"] = ["Tell us your name (1-200 characters)."]
    try:
        validate_password(password or "", user=User(email=email, full_name=full_name))
    except DjangoValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", fields=errors)
    # The invitation reached this address, which is as good as a verification link.
    return User.objects.create_user(
        email, password, full_name=full_name, email_verified_at=timezone.now()
    )
