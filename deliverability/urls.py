from __future__ import annotations

from django.urls import path

from deliverability.views import domains as views
from deliverability.views import mailboxes as views_mailboxes

app_name = "deliverability"
urlpatterns = [
    path("mailboxes/", views_mailboxes.mailboxes, name="mailboxes"),
    path("mailboxes/create/", views_mailboxes.mailbox_create, name="mailbox_create"),
    path("mailboxes/connect/", views_mailboxes.mailbox_connect, name="mailbox_connect"),
    path(
        "mailboxes/<int:mailbox_id>/history/",
        views_mailboxes.mailbox_history,
        name="mailbox_history",
    ),
    path("mailboxes/<int:mailbox_id>/test/", views_mailboxes.mailbox_test, name="mailbox_test"),
    path("mailboxes/<int:mailbox_id>/pause/", views_mailboxes.mailbox_pause, name="mailbox_pause"),
    path(
        "mailboxes/<int:mailbox_id>/resume/", views_mailboxes.mailbox_resume, name="mailbox_resume"
    ),
    path("mailboxes/<int:mailbox_id>/limit/", views_mailboxes.mailbox_limit, name="mailbox_limit"),
    path(
        "mailboxes/<int:mailbox_id>/delete/", views_mailboxes.mailbox_delete, name="mailbox_delete"
    ),
    path("domains/", views.domains, name="domains"),
    path("domains/add/", views.domain_add, name="domain_add"),
    path("domains/<int:domain_id>/", views.domain_detail, name="domain_detail"),
    path("domains/<int:domain_id>/status/", views.domain_status, name="domain_status"),
    path("domains/<int:domain_id>/verify/", views.domain_verify, name="domain_verify"),
    path("domains/<int:domain_id>/remove/", views.domain_remove, name="domain_remove"),
    path("domains/<int:domain_id>/resume/", views.domain_resume, name="domain_resume"),
]
