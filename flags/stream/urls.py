"""Change stream URL, under ``/api/<version>/`` (served by the ASGI application)."""

from django.urls import URLPattern, URLResolver, path

from . import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("stream", views.stream, name="stream"),
]
