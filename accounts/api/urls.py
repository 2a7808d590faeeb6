"""Account routes (under ``api/<version>/``): me, my tokens, environment keys, and auth."""

from django.urls import URLPattern, URLResolver, include, path

from flagship.routing import slash_optional

from .keys import EnvironmentKeyViewSet
from .views import MeView, TokenViewSet

ENVIRONMENT = "projects/<str:project>/environments/<str:environment>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/", include("accounts.api.auth_urls")),
    path("me/", MeView.as_view(), name="me"),
    path("me/tokens/", TokenViewSet.as_view({"get": "list", "post": "create"}), name="token-list"),
    path(
        "me/tokens/<str:token>/",
        TokenViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="token-detail",
    ),
    path(
        "me/tokens/<str:token>/revoke/",
        TokenViewSet.as_view({"post": "revoke"}),
        name="token-revoke",
    ),
    path(
        ENVIRONMENT + "keys/",
        EnvironmentKeyViewSet.as_view({"get": "list", "post": "create"}),
        name="environment-key-list",
    ),
    path(
        ENVIRONMENT + "keys/<str:key>/",
        EnvironmentKeyViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="environment-key-detail",
    ),
    path(
        ENVIRONMENT + "keys/<str:key>/revoke/",
        EnvironmentKeyViewSet.as_view({"post": "revoke"}),
        name="environment-key-revoke",
    ),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
