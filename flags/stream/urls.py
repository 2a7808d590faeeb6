"""Change stream URL, under ``/api/<version>/`` (served by the ASGI application)."""

from django.urls import URLPattern, URLResolver, path

from flagship.routing import slash_optional

from . import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("stream", views.stream, name="stream"),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
