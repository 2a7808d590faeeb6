"""``/`` (the checkout) and ``/flags`` (every flag, for debugging)."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("", views.checkout, name="checkout"),
    path("flags", views.flag_details, name="flag-details"),
]
