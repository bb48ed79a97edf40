"""Dashboard pages to read what the sandbox SMTP server captured. DEBUG only.

The sandbox keeps one Maildir for the whole platform; each tenant's pages show, open and delete
only the messages attributed to it (penguinmails.sandbox.scope). Another tenant's message is a
404, like a message that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from penguinmails.sandbox.scope import TenantScope
from penguinmails.sandbox.store import SandboxStore

View = Callable[..., HttpResponse]


def debug_only(view: View) -> View:
    """404 unless DEBUG: captured mail is a development aid, never part of production."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.DEBUG:
            raise Http404("Not available.")
        return view(request, *args, **kwargs)

    return wrapper


def _scope(request: HttpRequest) -> TenantScope:
    tenant = getattr(request, "tenant", None)
    if tenant is None:  # the pages are only routed on tenant hosts
        raise Http404("Not available.")
    return TenantScope.current(tenant.pk)


@debug_only
@login_required
def message_list(request: HttpRequest) -> HttpResponse:
    captured = SandboxStore().list_messages(limit=500, where=_scope(request))
    return render(request, "sandbox/messages.html", {"captured": captured})


@debug_only
@login_required
def message_detail(request: HttpRequest, key: str) -> HttpResponse:
    message = SandboxStore().get_message(key, where=_scope(request))
    if message is None:
        raise Http404("No such message.")
    return render(request, "sandbox/message.html", {"message": message})


@debug_only
@login_required
@require_POST
def clear(request: HttpRequest) -> HttpResponse:
    count = SandboxStore().clear(where=_scope(request))
    messages.success(request, f"Deleted {count} captured message{'s' if count != 1 else ''}.")
    return redirect("sandbox:messages")
