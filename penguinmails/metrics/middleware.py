"""`/metrics` and the request metrics.

First in MIDDLEWARE: /metrics is answered here, before tenant lookup (like /health, on any
host), and every other request Django answers is timed and counted by its route name
(`request.resolver_match.view_name`, set once a URL matched), never by its path.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Metric, generate_latest

from penguinmails import metrics
from penguinmails.metrics.collectors import ScrapeTimeCollector
from penguinmails.metrics.read import counted_registry

METRICS_PATH = "/metrics"
HEALTH_PREFIX = "/health"
# Requests that matched no route (404s, unknown hosts) share one label.
UNMATCHED = "<unmatched>"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks() -> list[Network]:
    networks = []
    for item in settings.METRICS_ALLOWED_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"Environment variable METRICS_ALLOWED_NETWORKS holds {item!r}, not a network "
                "(CIDR such as 10.0.0.0/8)."
            ) from None
    return networks


def refusal(request: HttpRequest, networks: list[Network]) -> HttpResponse | None:
    """Why this request may not read /metrics, as the response to give; None when it may."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    if networks:
        try:
            client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            client = None
        if client is None or not any(client in network for network in networks):
            return HttpResponse("Forbidden network\n", status=403, content_type="text/plain")
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        response = HttpResponse("Bearer token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("Invalid token\n", status=403, content_type="text/plain")
    return None


def exposition() -> bytes:
    """The counted metrics of every process, then the scrape-time figures."""
    registry = CollectorRegistry(auto_describe=False)
    counted = counted_registry(settings.PROMETHEUS_MULTIPROC_DIR or None)
    registry.register(_Proxy(counted))
    registry.register(ScrapeTimeCollector())
    return generate_latest(registry)


class _Proxy:
    """The counted metrics inside the scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> list[Metric]:
        try:
            return list(self.registry.collect())
        except FileNotFoundError:
            # A starting process deleted a dead one's file between the listing and the read.
            return list(self.registry.collect())


def serve_metrics(request: HttpRequest, networks: list[Network]) -> HttpResponse:
    refused = refusal(request, networks)
    if refused is not None:
        refused["Cache-Control"] = "no-store"
        return refused
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def route_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or UNMATCHED
    if request.path.startswith(HEALTH_PREFIX):
        return "health"
    return UNMATCHED


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.networks = allowed_networks()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.rstrip("/") == METRICS_PATH and request.method in ("GET", "HEAD"):
            return serve_metrics(request, self.networks)
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        metrics.record_request(
            route_name(request), method, response.status_code, time.perf_counter() - started
        )
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
