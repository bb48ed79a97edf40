"""A public URLconf for the error-rate tests: the platform's own, plus a view that fails."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from penguinmails.urls_public import urlpatterns as public_patterns


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a view that fails (tests/alerts)")


def fine(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("test-alerts/boom/", boom), path("test-alerts/fine/", fine), *public_patterns]
