"""URLs of a tenant host (`<slug>.BASE_DOMAIN`): dashboard, REST API, sandbox pages.

Wiring: this root URL conf is one of the few core modules that may import the apps (DESIGN.md,
Layout; pyproject's [tool.importlinter]). The /api/v1/ routes are here for that reason: they name
every app's viewsets.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from campaigns.api.campaigns import CampaignViewSet, LeadRepliedView
from campaigns.api.events import EventViewSet
from campaigns.api.inbox import InboxViewSet
from campaigns.api.leads import LeadViewSet
from campaigns.api.lists import LeadListViewSet, SuppressionViewSet
from campaigns.api.messages import MessageViewSet
from campaigns.api.stats import CampaignStatsView, OverviewView, SenderStatsView
from campaigns.api.templates import TemplateViewSet
from deliverability.api.domains import DomainViewSet
from deliverability.api.mailboxes import MailboxViewSet
from infrastructure.api import InfrastructureViewSet
from penguinmails.api import schema as _schema  # noqa: F401  (registers the bearer scheme)
from penguinmails.api.errors import not_found
from tenants.api import ApiKeyViewSet, MemberViewSet, MeView, RoleViewSet
from tenants.api_audit import AuditEventViewSet


class Router(SimpleRouter):
    """Routes with or without a trailing slash (`/api/v1/members` and `/api/v1/members/`)."""

    def __init__(self) -> None:
        super().__init__()
        # A regex fragment, so POST without the slash works instead of hitting APPEND_SLASH.
        self.trailing_slash = "/?"


router = Router()
router.register("members", MemberViewSet, basename="member")
router.register("roles", RoleViewSet, basename="role")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("audit", AuditEventViewSet, basename="audit")
router.register("domains", DomainViewSet, basename="domain")
router.register("mailboxes", MailboxViewSet, basename="mailbox")
router.register("infrastructure", InfrastructureViewSet, basename="infrastructure")
router.register("templates", TemplateViewSet, basename="template")
router.register("leads", LeadViewSet, basename="lead")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("inbox", InboxViewSet, basename="inbox")
router.register("events", EventViewSet, basename="event")
router.register("lists", LeadListViewSet, basename="lead-list")
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("messages", MessageViewSet, basename="message")

api_urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^me/?$", MeView.as_view(), name="me"),
    re_path(r"^leads/(?P<lead_id>\d+)/replied/?$", LeadRepliedView.as_view(), name="lead-replied"),
    re_path(
        r"^campaigns/(?P<campaign_id>\d+)/stats/?$",
        CampaignStatsView.as_view(),
        name="campaign-stats",
    ),
    re_path(
        r"^campaigns/(?P<campaign_id>\d+)/messages/?$",
        MessageViewSet.as_view({"get": "list"}),
        name="campaign-messages",
    ),
    re_path(r"^stats/overview/?$", OverviewView.as_view(), name="stats-overview"),
    re_path(r"^stats/senders/?$", SenderStatsView.as_view(), name="stats-senders"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
    path("", include("billing.api_urls")),
    path("", include("warmup.api_urls")),
    path("", include("reputation.api_urls")),
    path("", include("webhooks.api_urls")),
    # [\s\S] matches a path holding an encoded newline too; Django cannot reverse a (?s) flag.
    re_path(r"^[\s\S]*$", not_found),
]

urlpatterns = [
    path("api/v1/", include((api_urlpatterns, "api"))),
    path("", include("tenants.urls.accounts_tenant")),
    path("", include("tenants.urls.dashboard")),
    path("campaigns/", include("campaigns.urls")),
    path("inbox/", include("campaigns.urls_inbox")),
    path("", include("deliverability.urls")),
    path("infrastructure/", include("infrastructure.urls")),
    path("billing/", include("billing.urls")),
    path("warmup/", include("warmup.urls")),
    path("reputation/", include("reputation.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("sandbox/", include("penguinmails.sandbox.urls")),
]
