"""JWT endpoints, included by accounts/api/urls.py as ``auth/`` (so under /api/v1/auth/)."""

from django.urls import URLPattern, URLResolver, path

from flagship.routing import slash_optional

from . import auth

urlpatterns: list[URLPattern | URLResolver] = [
    path("token/", auth.TokenObtainView.as_view(), name="auth-token"),
    path("token/refresh/", auth.TokenRotateView.as_view(), name="auth-token-refresh"),
    path("token/verify/", auth.TokenCheckView.as_view(), name="auth-token-verify"),
    path("logout/", auth.LogoutView.as_view(), name="auth-logout"),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
