"""The audit feed: recent changes across every model, newest first."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ... import selectors
from ...models import FlagState
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
            OpenApiParameter(
                "environment",
                str,
                description="Only changes in this environment of the project (key; needs "
                "`project`): its flag states with their rules, conditions and prerequisites, "
                "and its keys.",
            ),
            OpenApiParameter(
                "flag",
                str,
                description="Only changes to this flag of the project (key, a deleted flag's "
                "too; needs `project`): the flag, its variants, its states with their rules, "
                "conditions and prerequisites (deleted ones included), and the segments its "
                "rules use.",
            ),
            OpenApiParameter("user", str, description="Only changes by this person (username)."),
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                description="Only changes at or after this time (ISO 8601).",
            ),
            OpenApiParameter(
                "until",
                OpenApiTypes.DATETIME,
                description="Only changes before this time (ISO 8601; exclusive).",
            ),
            OpenApiParameter("page", int, description="Page number."),
        ],
        responses={200: ChangeOutputSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One page of changes, filtered by project, environment, flag, person and time."""
        # An empty filter (?user=, as forms and clients send for "any") is left out, not refused.
        params = {
            name: value for name, value in request.query_params.dict().items() if value.strip()
        }
        filters = AuditFilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        rows = selectors.audit_feed(request.user, filters.validated_data)
        return self.history_response(rows)
