"""Dashboard: the workspace's webhook endpoints (list, add, enable/disable, delete), one
endpoint's delivery log with each attempt, replay and a test event. Thin: webhooks.services."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from penguinmails import states
from penguinmails.errors import DomainError, ValidationFailed
from tenants.forms_team import apply_errors
from tenants.permissions import Area, Level
from tenants.web import area_required, principal_of
from webhooks.forms import EndpointForm
from webhooks.models import Delivery, Endpoint
from webhooks.services import delivery as delivery_svc
from webhooks.services import endpoints as endpoint_svc

LOG_ROWS = 100


def _endpoint(endpoint_id: int) -> Endpoint:
    # Tenant-schema rows: an id of another workspace does not exist here.
    found = Endpoint.objects.filter(pk=endpoint_id).first()
    if found is None:
        raise Http404("No such webhook endpoint.")
    return found


def _index(request: HttpRequest, form: EndpointForm, status: int = 200) -> HttpResponse:
    principal = principal_of(request)
    context = {
        "endpoints": list(Endpoint.objects.all()),
        "form": form,
        "can_write": principal.allows(Area.SETTINGS, Level.WRITE),
    }
    return render(request, "webhooks/index.html", context, status=status)


@area_required(Area.SETTINGS)
def index(request: HttpRequest) -> HttpResponse:
    return _index(request, EndpointForm())


@require_POST
@area_required(Area.SETTINGS, level=Level.WRITE)
def create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            created = endpoint_svc.create_endpoint(
                principal_of(request),
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            # Rendered, not redirected: the secret is shown in full in this response only.
            response = render(
                request,
                "webhooks/created.html",
                {"endpoint": created.endpoint, "secret": created.secret},
            )
            response["Cache-Control"] = "no-store"
            return response
    return _index(request, form, status=400)


@area_required(Area.SETTINGS)
def detail(
    request: HttpRequest, webhook_id: int, form: EndpointForm | None = None, status: int = 200
) -> HttpResponse:
    principal = principal_of(request)
    endpoint = _endpoint(webhook_id)
    initial = {"url": endpoint.url, "events": endpoint.events, "description": endpoint.description}
    deliveries = list(
        Delivery.objects.filter(endpoint=endpoint).prefetch_related("attempt_log")[:LOG_ROWS]
    )
    context = {
        "endpoint": endpoint,
        "deliveries": deliveries,
        "transitions": states.history(endpoint, limit=10, newest_first=True),
        "can_write": principal.allows(Area.SETTINGS, Level.WRITE),
        "form": form or EndpointForm(initial=initial),
    }
    return render(request, "webhooks/detail.html", context, status=status)


@require_POST
@area_required(Area.SETTINGS, level=Level.WRITE)
def edit(request: HttpRequest, webhook_id: int) -> HttpResponse:
    endpoint = _endpoint(webhook_id)
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint_svc.update_endpoint(
                principal_of(request),
                endpoint,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:detail", webhook_id=endpoint.pk)
    return detail(request, webhook_id, form=form, status=400)


@require_POST
@area_required(Area.SETTINGS, level=Level.WRITE)
def action(request: HttpRequest, webhook_id: int) -> HttpResponse:
    """enable, disable, test, secret (shown once more), rotate (a new secret) or delete."""
    principal = principal_of(request)
    endpoint = _endpoint(webhook_id)
    verb = request.POST.get("do", "")
    try:
        if verb in ("secret", "rotate"):
            reveal = endpoint_svc.rotate_secret if verb == "rotate" else endpoint_svc.reveal_secret
            secret = reveal(principal, endpoint)
            response = render(
                request, "webhooks/created.html", {"endpoint": endpoint, "secret": secret}
            )
            response["Cache-Control"] = "no-store"
            return response
        if verb == "delete":
            endpoint_svc.delete_endpoint(principal, endpoint)
            messages.success(request, f"Endpoint {endpoint.url} deleted.")
            return redirect("webhooks:index")
        if verb in ("enable", "disable"):
            endpoint_svc.set_enabled(principal, endpoint, enabled=verb == "enable")
            messages.success(request, f"Endpoint {verb}d.")
        elif verb == "test":
            delivery_svc.send_test(principal, endpoint)
            messages.success(request, "Test event queued; it appears in the log below.")
        else:
            return HttpResponse("Unknown action.", status=400)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("webhooks:detail", webhook_id=endpoint.pk)


@require_POST
@area_required(Area.SETTINGS, level=Level.WRITE)
def replay(request: HttpRequest, webhook_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(webhook_id)
    found = (
        Delivery.objects.select_related("endpoint")
        .filter(endpoint=endpoint, pk=delivery_id)
        .first()
    )
    if found is None:
        raise Http404("No such delivery.")
    try:
        delivery_svc.replay(principal_of(request), found)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery {found.event_id} queued again.")
    return redirect("webhooks:detail", webhook_id=endpoint.pk)
