"""Account pages: landing, signup, login/logout on both hosts, handoff, verification, reset.

Thin: each parses a form, calls tenants.services.accounts and picks a template or a redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from penguinmails.errors import Conflict, ValidationFailed
from penguinmails.web import client_ip
from tenants.auth import logged_in_user
from tenants.forms import LoginForm, PasswordResetRequestForm, SetPasswordForm, SignupForm
from tenants.services import accounts
from tenants.services.access import active_membership
from tenants.services.handoff import consume_handoff, issue_handoff
from tenants.services.tenancy import public_url

BACKEND = "tenants.auth.EmailBackend"


def _safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- Public host ----------------------------------------------------------------------------


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "public/landing.html")


@never_cache
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, tenant = accounts.sign_up(
                workspace_name=form.cleaned_data["workspace_name"],
                slug=form.cleaned_data["slug"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
            )
        except ValidationFailed as exc:
            form.add_service_errors(exc)
        else:
            # Issued after commit (sign_up has returned), so the token never names a tenant
            # that a rollback removed.
            return HttpResponseRedirect(issue_handoff(user, tenant))
    return render(request, "accounts/signup.html", {"form": form})


@never_cache
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def public_login(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and request.user.is_authenticated:
        return redirect("workspaces")
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.check_login(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                ip=client_ip(request),
            )
        except accounts.LoginRefused as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend=BACKEND)
            workspaces = accounts.workspaces_for(user)
            if len(workspaces) == 1:
                return HttpResponseRedirect(issue_handoff(user, workspaces[0]))
            return redirect("workspaces")
    return render(
        request,
        "accounts/login.html",
        {"form": form, "tenant": None, "password_reset_url": public_url("/password-reset/")},
    )


@never_cache
@login_required
def workspaces(request: HttpRequest) -> HttpResponse:
    user = logged_in_user(request)
    return render(
        request, "accounts/workspaces.html", {"workspaces": accounts.workspaces_for(user)}
    )


@never_cache
@login_required
def enter_workspace(request: HttpRequest, slug: str) -> HttpResponse:
    """A fresh handoff on each click: tokens live a minute, the chooser page may sit longer."""
    user = logged_in_user(request)
    tenant = accounts.access_workspace(user, slug)
    if tenant is None:
        messages.error(request, "You are not a member of that workspace.")
        return redirect("workspaces")
    return HttpResponseRedirect(issue_handoff(user, tenant))


@require_POST
def public_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("landing")


@never_cache
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user, changed = accounts.verify_email(token)
    except ValidationFailed as exc:
        return render(
            request, "accounts/verify_email_invalid.html", {"message": exc.message}, status=400
        )
    return render(
        request,
        "accounts/verify_email_done.html",
        {"verified_user": user, "changed": changed, "login_url": public_url("/login/")},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_request(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        accounts.request_password_reset(form.cleaned_data["email"])
        # The same answer whether or not the address has an account.
        return render(request, "accounts/password_reset_sent.html")
    return render(request, "accounts/password_reset_request.html", {"form": form})


@never_cache
@sensitive_post_parameters("new_password", "new_password_again")
@require_http_methods(["GET", "POST"])
def password_reset_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    if accounts.user_for_reset_link(uidb64, token) is None:
        return render(request, "accounts/password_reset_invalid.html", status=400)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.reset_password(
                uidb64=uidb64, token=token, new_password=form.cleaned_data["new_password"]
            )
        except ValidationFailed as exc:
            form.add_service_errors(exc)
        else:
            return render(request, "accounts/password_reset_done.html")
    return render(request, "accounts/password_reset_confirm.html", {"form": form})


# --- Tenant host ----------------------------------------------------------------------------


@never_cache
@csrf_protect
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def tenant_login(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    if request.method == "GET" and getattr(request, "membership", None) is not None:
        return HttpResponseRedirect(_safe_next(request, "/"))
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.check_login(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                ip=client_ip(request),
                tenant=tenant,
            )
        except accounts.LoginRefused as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend=BACKEND)
            return HttpResponseRedirect(_safe_next(request, "/"))
    return render(
        request,
        "accounts/login.html",
        {
            "form": form,
            "next": _safe_next(request, ""),
            "password_reset_url": public_url("/password-reset/"),
        },
    )


@require_POST
def tenant_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


@never_cache
def handoff(request: HttpRequest, token: str) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    found = consume_handoff(token, tenant)
    if found is None or active_membership(found[0], tenant) is None:
        return render(request, "accounts/handoff_invalid.html", status=400)
    user, next_path = found
    login(request, user, backend=BACKEND)
    return redirect(next_path)


@require_POST
@login_required
def resend_verification(request: HttpRequest) -> HttpResponse:
    user = logged_in_user(request)
    try:
        accounts.resend_verification(user)
    except Conflict as exc:
        messages.info(request, exc.message)
    else:
        messages.success(request, f"We sent a new verification link to {user.email}.")
    return HttpResponseRedirect(_safe_next(request, "/"))
