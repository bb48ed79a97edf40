from __future__ import annotations

from django.urls import path

from deliverability import views

app_name = "deliverability"
urlpatterns = [
    path("mailboxes/", views.mailboxes, name="mailboxes"),
    path("domains/", views.domains, name="domains"),
    path("domains/add/", views.domain_add, name="domain_add"),
    path("domains/<int:domain_id>/", views.domain_detail, name="domain_detail"),
    path("domains/<int:domain_id>/status/", views.domain_status, name="domain_status"),
    path("domains/<int:domain_id>/verify/", views.domain_verify, name="domain_verify"),
    path("domains/<int:domain_id>/remove/", views.domain_remove, name="domain_remove"),
    path("warmup/", views.warmup, name="warmup"),
]
