"""warmup routes under /api/v1/ (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from warmup.api import MailboxWarmupView

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(
        r"^mailboxes/(?P<mailbox_id>\d+)/warmup/?$",
        MailboxWarmupView.as_view(),
        name="mailbox-warmup",
    ),
]
