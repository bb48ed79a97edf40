"""Invitation acceptance on the public host (`/invite/<token>/`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from penguinmails.errors import ValidationFailed
from penguinmails.web import client_ip
from tenants.forms_team import AcceptInvitationForm, apply_errors
from tenants.models import User
from tenants.services.handoff import issue_handoff
from tenants.services.invitations import (
    InvitationUnusable,
    accept_invitation,
    find_invitation,
    unusable_reason,
)


@never_cache
def accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = find_invitation(token)
    reason = unusable_reason(invitation)
    if reason is not None or invitation is None:
        return render(request, "invitations/unusable.html", {"reason": reason}, status=410)
    new_account = not User.objects.filter(email__iexact=invitation.email).exists()
    form = AcceptInvitationForm(request.POST or None, new_account=new_account)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                membership = accept_invitation(
                    token,
                    password=form.cleaned_data["password"],
                    full_name=form.cleaned_data.get("full_name", ""),
                    client_ip=client_ip(request),
                )
            except InvitationUnusable as exc:
                return render(
                    request, "invitations/unusable.html", {"reason": exc.message}, status=410
                )
            except ValidationFailed as exc:
                apply_errors(form, exc)
            else:
                return redirect(issue_handoff(membership.user, membership.tenant))
    return render(
        request,
        "invitations/accept.html",
        {"invitation": invitation, "form": form, "new_account": new_account},
        status=status,
    )
