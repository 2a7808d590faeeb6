"""A project's segments and their history."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...history import feed as history
from ...models import Condition, Segment
from ..mixins import HistoryMixin, ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.history import ChangeOutputSerializer
from ..serializers.targeting import (
    SegmentCreateInputSerializer,
    SegmentOutputSerializer,
    SegmentUpdateInputSerializer,
)


@extend_schema_view(
    list=extend_schema(operation_id="segments_list", summary="List a project's segments"),
    retrieve=extend_schema(operation_id="segments_retrieve", summary="Get a segment"),
)
class SegmentViewSet(
    ProjectScopedMixin,
    HistoryMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Segment],
):
    """A project's segments: read by every role, written by Editors and up.

    Changing a segment used in a protected environment needs a Release manager.
    """

    permission_classes = (ModelPermissions,)
    queryset = Segment.objects.none()  # the schema's model; get_queryset() scopes by project
    permission_model = Segment
    permission_actions = {"history": "view"}
    serializer_class = SegmentOutputSerializer
    lookup_field = "key"
    lookup_url_kwarg = "segment"
    search_fields = ("key", "name", "description")
    ordering_fields = ("key", "name", "created_at")
    filterset_fields = ("key",)

    def get_queryset(self) -> QuerySet[Segment]:
        """The project's segments with their conditions."""
        return (
            Segment.objects.filter(project=self.get_project())
            .prefetch_related(
                Prefetch("conditions", queryset=Condition.objects.order_by("order", "id"))
            )
            .order_by("key")
        )

    @extend_schema(
        operation_id="segments_create",
        request=SegmentCreateInputSerializer,
        responses={201: SegmentOutputSerializer},
        examples=[
            OpenApiExample(
                "Beta testers",
                request_only=True,
                value={
                    "key": "beta-testers",
                    "name": "Beta testers",
                    "conditions": [
                        {
                            "attribute": "email",
                            "operator": "str_ends_with",
                            "values": ["@example.com"],
                        }
                    ],
                },
            )
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create through ``segment_create``."""
        data = SegmentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_create(
            project=self.get_project(), actor=request.user, **data.validated_data
        )
        body = SegmentOutputSerializer(self.get_queryset().get(pk=segment.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="segments_update",
        request=SegmentUpdateInputSerializer,
        responses={200: SegmentOutputSerializer},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change through ``segment_update`` (conditions, when given, replace the old ones)."""
        segment = self.get_object()
        data = SegmentUpdateInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        services.segment_update(segment=segment, actor=request.user, **data.validated_data)
        return Response(SegmentOutputSerializer(self.get_queryset().get(pk=segment.pk)).data)

    @extend_schema(
        operation_id="segments_partial_update",
        request=SegmentUpdateInputSerializer,
        responses={200: SegmentOutputSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: the same as PUT, every field optional."""
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(operation_id="segments_destroy", responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Remove a segment no rule uses (409 otherwise)."""
        services.segment_delete(segment=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="segments_history",
        summary="Changes to a segment and its conditions, newest first",
        responses={200: ChangeOutputSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The segment's history merged with its conditions'."""
        segment = self.get_object()
        rows = history.merged(
            [
                history.part("segment", Q(id=segment.pk)),
                history.part("condition", Q(segment_id=segment.pk)),
            ]
        )
        return self.history_response(rows)
