from __future__ import annotations

from django.urls import path

from campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.index, name="index"),
    path("leads/", views.leads, name="leads"),
    path("templates/", views.templates, name="templates"),
]
