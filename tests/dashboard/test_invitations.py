from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from tenants.models import Invitation, InvitationStatus, Membership, Role, User
from tenants.services.access import principal_for_membership
from tenants.services.handoff import consume_handoff
from tenants.services.invitations import accept_invitation, hash_token, invite_member
from tests.conftest import PASSWORD, Cast, client_for
from tests.dashboard.helpers import invite_token_from_mail

NEW_PASSWORD = "plenty-of-entropy-42"


def _invite(cast: Cast, email: str, role: str, capture: Any) -> str:
    """Invite through the team page, return the token from the emailed link."""
    role_obj = Role.objects.get(tenant=None, slug=role)
    with capture(execute=True):
        response = client_for(cast.owner, cast.tenant).post(
            "/team/invite/", {"email": email, "role": role_obj.pk}
        )
    assert response.status_code == 302
    return invite_token_from_mail()


def _handed_off_user(response: Any, cast: Cast) -> User:
    """Follow the handoff redirect the way the tenant host would consume it."""
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.hostname == "acme.localhost"
    token = location.path.removeprefix("/auth/handoff/").strip("/")
    consumed = consume_handoff(token, cast.tenant)
    assert consumed is not None
    return consumed[0]


def test_it_stores_only_a_hash_of_the_invitation_token(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "hash@example.com", "member", django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get(email="hash@example.com")
    assert invitation.token_hash == hash_token(token)
    assert token not in str(list(Invitation.objects.values_list()))
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=7)


def test_it_accepts_an_invitation_as_a_new_user(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "newbie@example.com", "viewer", django_capture_on_commit_callbacks)
    public = client_for(None, None)
    page = public.get(f"/invite/{token}/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "Acme Agency" in content and "Viewer" in content and "Full name" in content

    response = public.post(f"/invite/{token}/", {"full_name": "New Bie", "password": NEW_PASSWORD})
    user = _handed_off_user(response, cast)
    assert user.email == "newbie@example.com"
    assert user.full_name == "New Bie"
    assert user.email_verified_at is not None
    assert user.check_password(NEW_PASSWORD)
    membership = Membership.objects.get(tenant=cast.tenant, user=user)
    assert membership.is_active and membership.role.slug == "viewer"
    assert Invitation.objects.get(email="newbie@example.com").status == InvitationStatus.ACCEPTED


def test_it_refuses_a_weak_password_for_a_new_user(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "weak@example.com", "member", django_capture_on_commit_callbacks)
    response = client_for(None, None).post(
        f"/invite/{token}/", {"full_name": "Weak", "password": "12345678"}
    )
    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert not User.objects.filter(email="weak@example.com").exists()
    assert Invitation.objects.get(email="weak@example.com").status == InvitationStatus.PENDING


def test_it_accepts_an_invitation_as_an_existing_user(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    existing = User.objects.create_user("known@example.com", PASSWORD)
    token = _invite(cast, "known@example.com", "member", django_capture_on_commit_callbacks)
    public = client_for(None, None)
    page = public.get(f"/invite/{token}/").content.decode()
    assert "Full name" not in page

    wrong = public.post(f"/invite/{token}/", {"password": "not-the-password"})
    assert wrong.status_code == 400
    assert not Membership.objects.filter(tenant=cast.tenant, user=existing).exists()

    response = public.post(f"/invite/{token}/", {"password": PASSWORD})
    assert _handed_off_user(response, cast) == existing
    assert Membership.objects.get(tenant=cast.tenant, user=existing).role.slug == "member"


def test_it_reactivates_a_deactivated_member_who_accepts(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    user = User.objects.create_user("back@example.com", PASSWORD)
    Membership.objects.create(
        tenant=cast.tenant,
        user=user,
        role=Role.objects.get(tenant=None, slug="viewer"),
        is_active=False,
        deactivated_at=timezone.now(),
    )
    token = _invite(cast, "back@example.com", "member", django_capture_on_commit_callbacks)
    response = client_for(None, None).post(f"/invite/{token}/", {"password": PASSWORD})
    assert response.status_code == 302
    membership = Membership.objects.get(tenant=cast.tenant, user=user)
    assert membership.is_active and membership.role.slug == "member"


def test_it_accepts_an_invitation_only_once(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "once@example.com", "member", django_capture_on_commit_callbacks)
    public = client_for(None, None)
    data = {"full_name": "Once", "password": NEW_PASSWORD}
    assert public.post(f"/invite/{token}/", data).status_code == 302
    again = public.post(f"/invite/{token}/", data)
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    assert (
        Membership.objects.filter(tenant=cast.tenant, user__email="once@example.com").count() == 1
    )
    assert User.objects.filter(email="once@example.com").count() == 1


def test_it_refuses_an_expired_invitation(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "late@example.com", "member", django_capture_on_commit_callbacks)
    Invitation.objects.filter(email="late@example.com").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    public = client_for(None, None)
    page = public.get(f"/invite/{token}/")
    assert page.status_code == 410
    assert "expired" in page.content.decode()
    response = public.post(f"/invite/{token}/", {"full_name": "Late", "password": NEW_PASSWORD})
    assert response.status_code == 410
    assert not User.objects.filter(email="late@example.com").exists()


def test_it_refuses_a_revoked_invitation(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "gone@example.com", "member", django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get(email="gone@example.com")
    client_for(cast.owner, cast.tenant).post(f"/team/invitations/{invitation.pk}/revoke/")
    response = client_for(None, None).post(
        f"/invite/{token}/", {"full_name": "Gone", "password": NEW_PASSWORD}
    )
    assert response.status_code == 410
    assert "withdrawn" in response.content.decode()
    assert not User.objects.filter(email="gone@example.com").exists()


def test_it_refuses_an_unknown_token(cast: Cast) -> None:
    response = client_for(None, None).get("/invite/not-a-real-token/")
    assert response.status_code == 410
    assert "not valid" in response.content.decode()


def test_it_replaces_an_expired_pending_invitation_with_a_new_one(cast: Cast) -> None:
    owner = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))
    role = Role.objects.get(tenant=None, slug="member")
    first = invite_member(owner, email="again@example.com", role=role)
    Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(days=1))
    second = invite_member(owner, email="again@example.com", role=role)
    first.refresh_from_db()
    assert first.status == InvitationStatus.REVOKED
    assert second.status == InvitationStatus.PENDING


def test_it_lets_only_owners_invite_owners(cast: Cast) -> None:
    from penguinmails.errors import PermissionDenied

    admin = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.admin))
    with pytest.raises(PermissionDenied):
        invite_member(admin, email="boss@example.com", role=Role.objects.get(slug="owner"))
    assert not Invitation.objects.filter(email="boss@example.com").exists()


def test_it_refuses_acceptance_into_a_suspended_workspace(cast: Cast) -> None:
    from penguinmails.errors import TenantSuspended
    from tenants.services.tenancy import suspend_tenant

    owner = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))
    invite_member(owner, email="s@example.com", role=Role.objects.get(tenant=None, slug="member"))
    invitation = Invitation.objects.get(email="s@example.com")
    # The plaintext token is only in the email; swap in a known one for this service-level test.
    Invitation.objects.filter(pk=invitation.pk).update(token_hash=hash_token("known-token"))
    suspend_tenant(cast.tenant)
    with pytest.raises(TenantSuspended):
        accept_invitation("known-token", password=NEW_PASSWORD, full_name="S")
    assert not User.objects.filter(email="s@example.com").exists()


def test_it_lands_the_new_member_logged_in_on_the_workspace(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    token = _invite(cast, "lands@example.com", "member", django_capture_on_commit_callbacks)
    response = client_for(None, None).post(
        f"/invite/{token}/", {"full_name": "Lands", "password": NEW_PASSWORD}
    )
    location = urlsplit(response["Location"])
    tenant_client = client_for(None, cast.tenant)
    landed = tenant_client.get(location.path, follow=True)
    assert landed.status_code == 200
    assert landed.context["request"].user.email == "lands@example.com"
    assert "Acme Agency" in landed.content.decode()


def test_it_limits_password_guesses_when_accepting_as_an_existing_user(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from tenants.services import login_guard

    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    existing = User.objects.create_user("guessed@example.com", PASSWORD)
    login_guard.clear_account(existing.email)
    token = _invite(cast, "guessed@example.com", "member", django_capture_on_commit_callbacks)
    public = client_for(None, None)
    for _ in range(3):
        assert public.post(f"/invite/{token}/", {"password": "a-wrong-guess"}).status_code == 400
    # The budget is spent: even the right password is refused, and nothing is created.
    refused = public.post(f"/invite/{token}/", {"password": PASSWORD})
    assert refused.status_code == 400
    assert not Membership.objects.filter(tenant=cast.tenant, user=existing).exists()
    login_guard.clear_account(existing.email)
    accepted = public.post(f"/invite/{token}/", {"password": PASSWORD})
    assert _handed_off_user(accepted, cast) == existing
