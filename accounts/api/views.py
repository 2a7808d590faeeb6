"""The current user (``me``) and their own admin tokens."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from flags.api.mixins import ManagementViewMixin
from flags.api.permissions import PersonRequired, is_read

from .. import services
from ..models import ApiKey, User
from .revoking import RevokableKeyViewSet
from .serializers import (
    ApiKeyOutputSerializer,
    IssuedApiKeyOutputSerializer,
    MeOutputSerializer,
    TokenInputSerializer,
)


class MeView(ManagementViewMixin, GenericAPIView[User]):
    """The caller (a person, or the owner of an admin token)."""

    permission_classes = (PersonRequired,)
    serializer_class = MeOutputSerializer

    @extend_schema(operation_id="me_retrieve", summary="Who am I, and what may I do")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The current user with their roles and permissions."""
        return Response(MeOutputSerializer(cast(User, request.user)).data)


class OwnTokensOnly(PersonRequired):
    """A person manages their own tokens; an admin token may list them but not mint or revoke.

    A leaked token that could issue new tokens would outlive its own revocation.
    """

    message = "Admin tokens cannot issue or revoke tokens; sign in as a person."
    code = "token_cannot_manage_tokens"

    def has_permission(self, request: Request, view: Any) -> bool:
        """People may do anything to their tokens; tokens may only read."""
        if not super().has_permission(request, view):
            return False
        return is_read(request) or not isinstance(request.auth, ApiKey)


@extend_schema_view(
    list=extend_schema(operation_id="tokens_list", summary="List my admin tokens"),
    retrieve=extend_schema(operation_id="tokens_retrieve", summary="Get one of my admin tokens"),
    destroy=extend_schema(
        operation_id="tokens_destroy", summary="Revoke a token", responses={204: None}
    ),
    revoke=extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke a token",
        request=None,
        responses={200: ApiKeyOutputSerializer},
    ),
)
class TokenViewSet(
    ManagementViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    RevokableKeyViewSet,
):
    """The caller's admin tokens (secrets are shown once, on creation)."""

    permission_classes = (OwnTokensOnly,)
    serializer_class = ApiKeyOutputSerializer
    lookup_field = "lookup"
    lookup_url_kwarg = "token"
    filter_backends = ()

    def get_queryset(self) -> QuerySet[ApiKey]:
        """Only the caller's own tokens."""
        return ApiKey.objects.filter(
            kind=ApiKey.Kind.ADMIN, user=cast(User, self.request.user)
        ).select_related("created_by", "environment")

    @extend_schema(
        operation_id="tokens_create",
        summary="Issue an admin token (its secret is in this response only)",
        request=TokenInputSerializer,
        responses={201: IssuedApiKeyOutputSerializer},
        examples=[OpenApiExample("CI", value={"name": "ci-pipeline"}, request_only=True)],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Issue through ``api_key_issue``."""
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.api_key_issue(
            kind=ApiKey.Kind.ADMIN,
            user=cast(User, request.user),
            actor=request.user,
            **data.validated_data,
        )
        body = IssuedApiKeyOutputSerializer(key, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)
