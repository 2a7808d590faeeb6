"""Revoking API keys through the API: shared by environment keys and admin tokens."""

from __future__ import annotations

from typing import Any

from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services
from ..models import ApiKey
from .serializers import ApiKeyOutputSerializer


class RevokableKeyViewSet(viewsets.GenericViewSet[ApiKey]):
    """A viewset of API keys whose ``DELETE`` and ``POST …/revoke`` revoke them.

    Revoking goes through ``api_key_revoke``; the row stays, for the audit trail. Each viewset
    documents both operations (its own operation ids) with ``extend_schema_view``.
    """

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Revoke through ``api_key_revoke`` (the row stays, for the audit trail)."""
        services.api_key_revoke(key=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Revoke, answering with the revoked key (or token)."""
        key = services.api_key_revoke(key=self.get_object(), actor=request.user)
        return Response(ApiKeyOutputSerializer(key).data)
