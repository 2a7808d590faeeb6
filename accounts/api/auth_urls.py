"""JWT endpoints, included by accounts/api/urls.py as ``auth/`` (so under /api/v1/auth/)."""

from django.urls import URLPattern, URLResolver, path

from . import auth

urlpatterns: list[URLPattern | URLResolver] = [
    path("token/", auth.TokenObtainView.as_view(), name="auth-token"),
    path("token/refresh/", auth.TokenRotateView.as_view(), name="auth-token-refresh"),
    path("token/verify/", auth.TokenCheckView.as_view(), name="auth-token-verify"),
    path("logout/", auth.LogoutView.as_view(), name="auth-logout"),
]
