from __future__ import annotations

from django.urls import path

from infrastructure import views

app_name = "infrastructure"
urlpatterns = [
    path("", views.index, name="index"),
    path("progress/", views.progress, name="progress"),
    path("provision/", views.provision, name="provision"),
]
