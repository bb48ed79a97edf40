"""webhooks routes under /api/v1/ (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from webhooks.api import WebhookViewSet


class _Router(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"  # as the root API router: with or without the slash


router = _Router()
router.register("webhooks", WebhookViewSet, basename="webhook")
urlpatterns = router.urls
