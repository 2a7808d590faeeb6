"""The audit feed: recent changes across every model, newest first."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ...history import feed as history
from ...models import FlagState, Project
from ..mixins import HistoryMixin
from ..permissions import ModelPermissions
from ..serializers.history import AuditFilterSerializer, ChangeOutputSerializer


class AuditView(HistoryMixin, GenericAPIView[Any]):
    """Who changed what and when, across projects (every role may read it)."""

    permission_classes = (ModelPermissions,)
    permission_model = FlagState  # reading history is reading flags: view_flagstate
    serializer_class = ChangeOutputSerializer
    filter_backends = ()

    @extend_schema(
        operation_id="audit_list",
        summary="Recent changes across every model",
        parameters=[
            OpenApiParameter("project", str, description="Only changes in this project (key)."),
            OpenApiParameter("user", str, description="Only changes by this person (username)."),
            OpenApiParameter("page", int, description="Page number."),
        ],
        responses={200: ChangeOutputSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One page of changes, filtered by project and person."""
        filters = AuditFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        project_id = user_id = None
        if "project" in filters.validated_data:
            project_id = get_object_or_404(Project, key=filters.validated_data["project"]).pk
        if "user" in filters.validated_data:
            users = get_user_model()._default_manager
            user_id = get_object_or_404(users, username=filters.validated_data["user"]).pk
        return self.history_response(history.audit_rows(project_id=project_id, user_id=user_id))
