"""Accounts: signup, login checks, email verification and password reset.

Views on both hosts call these; each write is atomic, audited, and sends its email after commit.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django_tenants.utils import schema_context
from email_validator import EmailNotValidError, validate_email

from penguinmails.analytics_events import capture
from penguinmails.errors import Conflict, DomainError, ValidationFailed
from penguinmails.mail import send_transactional
from tenants.models import Membership, Tenant, User
from tenants.services import audit, login_guard
from tenants.services.access import active_membership
from tenants.services.tenancy import create_tenant, public_url, validate_slug

VERIFY_SALT = "penguinmails.accounts.verify-email"
VERIFY_MAX_AGE_SECONDS = 3 * 24 * 3600
RESEND_INTERVAL_SECONDS = 60

# One message for every refused login, so the answer never tells whether an account exists.
LOGIN_REFUSED_MESSAGE = "Invalid email or password, or too many attempts; try again later."


class LoginRefused(DomainError):
    """Wrong email, wrong password, not a member here, or locked: deliberately indistinct."""

    status_code = 400
    code = "login_refused"

    def __init__(self) -> None:
        super().__init__(LOGIN_REFUSED_MESSAGE)


def normalize_email(email: str) -> str:
    """The address in its stored form, or ValidationFailed on the `email` field."""
    try:
        result = validate_email((email or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed("Invalid email address.", fields={"email": [str(exc)]}) from exc
    return result.normalized.lower()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


# --- Signup ---------------------------------------------------------------------------------


def _signup_errors(
    *, workspace_name: str, slug: str, email: str, password: str, full_name: str
) -> tuple[dict[str, list[str]], str, str]:
    """Every field's problems at once (so the form shows them together), plus clean values."""
    errors: dict[str, list[str]] = {}
    if not workspace_name:
        errors["workspace_name"] = ["Give your workspace a name."]
    elif len(workspace_name) > 200:
        errors["workspace_name"] = ["At most 200 characters."]
    if len(full_name) > 200:
        errors["full_name"] = ["At most 200 characters."]
    try:
        slug = validate_slug(slug)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    try:
        email = normalize_email(email)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    else:
        if User.objects.filter(email=email).exists():
            # Signup cannot help revealing this: the address is unique.
            errors["email"] = [
                "An account with this email already exists. Log in instead, then create or "
                "join workspaces from there."
            ]
    try:
        validate_password(password or "", user=User(email=email, full_name=full_name))
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    return errors, slug, email


def sign_up(
    *, workspace_name: str, slug: str, email: str, password: str, full_name: str
) -> tuple[User, Tenant]:
    """Create an unverified user and their workspace (schema, host, owner membership).

    All or nothing: a refused field, or a race lost to another signup, leaves no user, tenant or
    schema behind. The verification email goes out after commit.
    """
    workspace_name = (workspace_name or "").strip()
    full_name = (full_name or "").strip()
    errors, slug, email = _signup_errors(
        workspace_name=workspace_name,
        slug=slug,
        email=email,
        password=password,
        full_name=full_name,
    )
    if errors:
        raise ValidationFailed("Please correct the highlighted fields.", fields=errors)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, full_name=full_name)
            try:
                tenant = create_tenant(name=workspace_name, slug=slug, owner=user)
            except ValidationFailed as exc:
                fields = dict(exc.fields)
                if "name" in fields:
                    fields["workspace_name"] = fields.pop("name")
                raise ValidationFailed(exc.message, fields=fields) from exc
            audit.record("user.signed_up", tenant=tenant, actor=user, slug=slug)
            capture("signed up", tenant)
            _send_verification(user)
    except IntegrityError as exc:
        # Another signup took the email or the address between our checks and our insert:
        # checking again now names the field it took.
        errors, _, _ = _signup_errors(
            workspace_name=workspace_name,
            slug=slug,
            email=email,
            password=password,
            full_name=full_name,
        )
        raise ValidationFailed(
            "Please correct the highlighted fields.",
            fields=errors or {"slug": ["That address was just taken; try another."]},
        ) from exc
    return user, tenant


# --- Login ----------------------------------------------------------------------------------


def check_login(*, email: str, password: str, ip: str, tenant: Tenant | None = None) -> User:
    """The user whose credentials these are, or LoginRefused.

    The attempt is counted by login_guard before the password is looked at, so the lockout holds
    under concurrent guesses. On a tenant host only an active member of that tenant gets in.
    """
    email = (email or "").strip().lower()
    reservation = login_guard.reserve_attempt(email=email, ip=ip)
    if not reservation.allowed:
        # No password hashing here: a flood of guesses against a locked account stays cheap.
        # The quick answer tells only "locked", and unknown emails lock the same way.
        raise LoginRefused()
    user = authenticate(None, email=email, password=password)
    if not isinstance(user, User):
        raise LoginRefused()
    if tenant is not None and active_membership(user, tenant) is None:
        raise LoginRefused()
    login_guard.record_success(reservation)
    return user


def workspaces_for(user: User) -> list[Tenant]:
    """The tenants this user may enter (active memberships), by name."""
    memberships = (
        Membership.objects.select_related("tenant")
        .filter(user=user, is_active=True, tenant__is_template=False)
        .order_by("tenant__name")
    )
    return [m.tenant for m in memberships]


def access_workspace(user: User, slug: str) -> Tenant | None:
    """One of the user's own workspaces by slug (None for anything else)."""
    for tenant in workspaces_for(user):
        if tenant.slug == slug:
            return tenant
    return None


# --- Email verification ---------------------------------------------------------------------


def make_verification_token(user: User) -> str:
    """A signed token for this user and their current address, valid VERIFY_MAX_AGE_SECONDS."""
    return signing.dumps({"u": user.pk, "e": _digest(user.email)}, salt=VERIFY_SALT)


def _send_verification(user: User) -> None:
    token = make_verification_token(user)
    send_transactional(
        "verify_email",
        to=user.email,
        variables={
            "verify_url": public_url(f"/verify-email/{token}/"),
            "name": user.get_short_name(),
        },
        # A digest, not the token: the key is logged when sending fails.
        idempotency_key=f"verify-{user.pk}-{_digest(token)}",
    )


def verify_email(token: str) -> tuple[User, bool]:
    """Mark the address verified; (user, True) the first time, (user, False) if already done.

    The token names the address it was sent to, so it stops working if the email changes.
    """
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE_SECONDS)
    except signing.SignatureExpired as exc:
        raise ValidationFailed(
            "This verification link has expired. Log in and ask for a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise ValidationFailed("This verification link is not valid.") from exc
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=data.get("u"), is_active=True).first()
        if user is None or _digest(user.email) != data.get("e"):
            raise ValidationFailed("This verification link is not valid.")
        if user.email_verified_at is not None:
            return user, False
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
        audit.record("user.email_verified", actor=user)
    return user, True


def resend_verification(user: User) -> None:
    """Send a fresh verification link, at most once a minute per user."""
    if user.email_verified_at is not None:
        raise Conflict("Your email address is already verified.")
    with schema_context("public"):
        # cache.add is atomic: of two quick clicks only one sends.
        if not cache.add(f"verify-resend:{user.pk}", 1, RESEND_INTERVAL_SECONDS):
            raise Conflict("We sent a link less than a minute ago; check your inbox.")
    with transaction.atomic():
        audit.record("user.verification_resent", actor=user)
        _send_verification(user)


# --- Password reset -------------------------------------------------------------------------


def request_password_reset(email: str) -> None:
    """Email a reset link if an active account has this address; silently nothing otherwise."""
    # A lookup, not a syntax check: any stored address may ask, and junk simply matches nothing.
    user = User.objects.filter(email=(email or "").strip().lower(), is_active=True).first()
    if user is None:
        return
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    with transaction.atomic():
        audit.record("user.password_reset_requested", actor=user)
        send_transactional(
            "password_reset",
            to=user.email,
            variables={
                "reset_url": public_url(f"/password-reset/{uidb64}/{token}/"),
                "name": user.get_short_name(),
            },
            idempotency_key=f"reset-{user.pk}-{_digest(token)}",
        )


def user_for_reset_link(uidb64: str, token: str) -> User | None:
    """The user a reset link is for, if the link is still valid."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
    except (TypeError, ValueError, OverflowError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


@transaction.atomic
def reset_password(*, uidb64: str, token: str, new_password: str) -> User:
    """Set a new password through a reset link; the link then stops working.

    Also lifts the login lockout on the account: whoever reads its mailbox has proven enough.
    """
    user = user_for_reset_link(uidb64, token)
    if user is None:
        raise ValidationFailed(
            "This password reset link is invalid or has already been used. Ask for a new one."
        )
    try:
        validate_password(new_password or "", user=user)
    except ValidationError as exc:
        raise ValidationFailed(
            "Choose a stronger password.", fields={"new_password": list(exc.messages)}
        ) from exc
    user.set_password(new_password)
    # The reset link proves the mailbox, so it verifies the address too.
    fields = ["password"]
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        fields.append("email_verified_at")
    user.save(update_fields=fields)
    audit.record("user.password_reset", actor=user)
    email = user.email
    transaction.on_commit(lambda: login_guard.clear_account(email))
    return user
