"""JWT endpoints: obtain, refresh (rotating), verify, and log out (blacklist a refresh token).

Refreshing blacklists the presented refresh token. All are rate-limited per client address.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenBlacklistSerializer
from rest_framework_simplejwt.views import (
    TokenObtainPairView,
    TokenRefreshView,
    TokenVerifyView,
    TokenViewBase,
)

import flagship.errors  # noqa: F401  # registers the API-key security scheme for the schema
from flagship.ratelimits import AuthRateThrottle


@extend_schema_view(post=extend_schema(tags=["auth"], summary="Obtain a token pair"))
class TokenObtainView(TokenObtainPairView):
    """Exchange a username and password for an access token and a refresh token."""

    throttle_classes = [AuthRateThrottle]


@extend_schema_view(post=extend_schema(tags=["auth"], summary="Refresh a token pair"))
class TokenRotateView(TokenRefreshView):
    """Exchange a refresh token for a new pair; the presented refresh token is blacklisted."""

    throttle_classes = [AuthRateThrottle]


@extend_schema_view(post=extend_schema(tags=["auth"], summary="Verify a token"))
class TokenCheckView(TokenVerifyView):
    """Check that a token is valid (200 with an empty object, else 401 ``token_not_valid``)."""

    throttle_classes = [AuthRateThrottle]


class LogoutView(TokenViewBase):
    """Blacklist a refresh token, so it can no longer be refreshed (204)."""

    serializer_class = TokenBlacklistSerializer
    throttle_classes = [AuthRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Log out: blacklist a refresh token",
        request=TokenBlacklistSerializer,
        responses={204: OpenApiResponse(description="The refresh token is blacklisted.")},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Blacklist the given refresh token."""
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        return Response(status=status.HTTP_204_NO_CONTENT)
