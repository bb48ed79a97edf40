from __future__ import annotations

from django.urls import path

from campaigns.views import campaigns as views_campaigns
from campaigns.views import leads as views_leads
from campaigns.views import messages as views_messages
from campaigns.views import stats as views_stats
from campaigns.views import suppressions as views_suppressions
from campaigns.views import templates as views_templates

app_name = "campaigns"
urlpatterns = [
    path("", views_campaigns.campaign_list, name="index"),
    path("new/", views_campaigns.campaign_new, name="campaign_new"),
    path("overview/", views_stats.overview, name="overview"),
    path(
        "<int:campaign_id>/progress/",
        views_stats.campaign_progress,
        name="campaign_progress",
    ),
    path("<int:campaign_id>/", views_campaigns.campaign_detail, name="campaign_detail"),
    path("<int:campaign_id>/delete/", views_campaigns.campaign_delete, name="campaign_delete"),
    path(
        "<int:campaign_id>/messages/",
        views_messages.campaign_messages,
        name="campaign_messages",
    ),
    path(
        "<int:campaign_id>/messages/<int:message_id>/resolve/",
        views_messages.message_resolve,
        name="message_resolve",
    ),
    path(
        "<int:campaign_id>/do/<slug:action>/",
        views_campaigns.campaign_move,
        name="campaign_move",
    ),
    path("<int:campaign_id>/steps/", views_campaigns.step_add, name="step_add"),
    path(
        "<int:campaign_id>/steps/<int:step_id>/delete/",
        views_campaigns.step_remove,
        name="step_remove",
    ),
    path(
        "<int:campaign_id>/steps/<int:step_id>/variants/",
        views_campaigns.variant_add,
        name="variant_add",
    ),
    path(
        "<int:campaign_id>/steps/<int:step_id>/variants/<int:variant_id>/delete/",
        views_campaigns.variant_remove,
        name="variant_remove",
    ),
    path("leads/", views_leads.leads, name="leads"),
    path("leads/export.csv", views_leads.export, name="leads_export"),
    path("leads/<int:lead_id>/", views_leads.lead_detail, name="lead_detail"),
    path("leads/<int:lead_id>/delete/", views_leads.lead_delete, name="lead_delete"),
    path("leads/lists/new/", views_leads.list_create, name="list_create"),
    path("leads/suppressions/", views_suppressions.suppressions, name="suppressions"),
    path("leads/suppressions/add/", views_suppressions.suppression_add, name="suppression_add"),
    path(
        "leads/suppressions/<int:suppression_id>/lift/",
        views_suppressions.suppression_lift,
        name="suppression_lift",
    ),
    path("leads/imports/new/", views_leads.import_new, name="import_new"),
    path("leads/imports/<int:import_id>/", views_leads.import_detail, name="import_detail"),
    path(
        "leads/imports/<int:import_id>/progress/",
        views_leads.import_progress,
        name="import_progress",
    ),
    path("leads/imports/<int:import_id>/start/", views_leads.import_start, name="import_start"),
    path(
        "leads/imports/<int:import_id>/errors.csv",
        views_leads.import_errors,
        name="import_errors",
    ),
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
