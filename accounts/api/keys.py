"""Environment keys (server and client) of a project's environment.

Who may manage them: whoever may change flags in that environment — Editors in unprotected
environments, Release managers and Administrators in every environment. Viewers may not even
list them (names and lookups help an attacker aim).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags.api.mixins import ProjectScopedMixin
from flags.api.permissions import PersonRequired
from flags.models import Environment

from .. import services
from ..models import ApiKey
from .revoking import RevokableKeyViewSet
from .serializers import (
    ApiKeyOutputSerializer,
    EnvironmentKeyInputSerializer,
    IssuedApiKeyOutputSerializer,
)

CHANGE_STATE = "flags.change_flagstate"
CHANGE_PROTECTED = "flags.change_protected_environment"


class MayManageEnvironmentKeys(PersonRequired):
    """The caller may change flags in the environment named in the URL."""

    message = "Managing this environment's keys needs the right to change flags there."
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        """Editor rights, plus the release permission for a protected environment."""
        if not super().has_permission(request, view):
            return False
        user = request.user
        if not user.has_perm(CHANGE_STATE):
            return False
        environment: Environment = view.get_environment()
        return not environment.protected or user.has_perm(CHANGE_PROTECTED)


@extend_schema_view(
    list=extend_schema(operation_id="environment_keys_list", summary="List environment keys"),
    retrieve=extend_schema(operation_id="environment_keys_retrieve", summary="Get a key"),
    destroy=extend_schema(
        operation_id="environment_keys_destroy", summary="Revoke a key", responses={204: None}
    ),
    revoke=extend_schema(
        operation_id="environment_keys_revoke",
        summary="Revoke a key",
        request=None,
        responses={200: ApiKeyOutputSerializer},
    ),
)
class EnvironmentKeyViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    RevokableKeyViewSet,
):
    """An environment's server and client keys (secrets are shown once, on creation)."""

    permission_classes = (MayManageEnvironmentKeys,)
    queryset = ApiKey.objects.none()  # the schema's model; get_queryset() scopes
    serializer_class = ApiKeyOutputSerializer
    lookup_field = "lookup"
    lookup_url_kwarg = "key"
    filter_backends = ()
    _environment: Environment | None = None

    def get_environment(self) -> Environment:
        """The environment named in the URL (404 when there is none)."""
        if self._environment is None:
            self._environment = get_object_or_404(
                Environment.objects.select_related("project"),
                project=self.get_project(),
                key=self.kwargs["environment"],
            )
        return self._environment

    def get_queryset(self) -> QuerySet[ApiKey]:
        """The environment's keys."""
        return ApiKey.objects.filter(environment=self.get_environment()).select_related(
            "created_by", "environment"
        )

    @extend_schema(
        operation_id="environment_keys_create",
        summary="Issue an environment key (its secret is in this response only)",
        request=EnvironmentKeyInputSerializer,
        responses={201: IssuedApiKeyOutputSerializer},
        examples=[
            OpenApiExample(
                "Checkout service",
                value={"name": "checkout-service", "kind": "server"},
                request_only=True,
            )
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Issue through ``api_key_issue``."""
        data = EnvironmentKeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.api_key_issue(
            environment=self.get_environment(), actor=request.user, **data.validated_data
        )
        body = IssuedApiKeyOutputSerializer(key, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)
