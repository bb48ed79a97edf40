from __future__ import annotations

from django.urls import path

from campaigns import views, views_templates

app_name = "campaigns"
urlpatterns = [
    path("", views.index, name="index"),
    path("leads/", views.leads, name="leads"),
    path("templates/", views_templates.template_list, name="templates"),
    path("templates/new/", views_templates.template_new, name="template_new"),
    path("templates/preview/", views_templates.template_preview, name="template_preview"),
    path("templates/<int:template_id>/", views_templates.template_edit, name="template_edit"),
    path(
        "templates/<int:template_id>/duplicate/",
        views_templates.template_duplicate,
        name="template_duplicate",
    ),
    path(
        "templates/<int:template_id>/delete/",
        views_templates.template_delete,
        name="template_delete",
    ),
    path(
        "templates/<int:template_id>/send-test/",
        views_templates.template_send_test,
        name="template_send_test",
    ),
]
