from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("", views.index, name="index"),
    path("plan/", views.choose, name="choose"),
    path("checkout/", views.checkout, name="checkout"),
    path("portal/", views.portal, name="portal"),
]
