"""Scheduled changes of a flag in one environment: list, create, read, cancel (``DELETE``).

Editors and up schedule (``flags.add_scheduledchange``); in a protected environment scheduling
and cancelling need the release permission, as a direct change does (docs/schedules.md). In an
environment that takes change requests, scheduling proposes the schedule instead: 202 Accepted
with the change request, and the schedule exists once it is approved and applied.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...models import FlagState, ScheduledChange, ScheduledStep
from ..mixins import ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.schedules import ScheduledChangeInputSerializer, ScheduledChangeOutputSerializer
from .change_requests import ACCEPTED_RESPONSE, accepted

RAMP_EXAMPLE = OpenApiExample(
    "A ramp 10 → 50 → 100 %",
    request_only=True,
    value={
        "note": "FS-12 checkout ramp",
        "steps": [
            {"at": "2030-03-04T09:00:00Z", "action": "rollout", "percentage": 10_000},
            {"at": "2030-03-05T09:00:00Z", "action": "rollout", "percentage": 50_000},
            {"at": "2030-03-06T09:00:00Z", "action": "rollout", "percentage": 100_000},
        ],
    },
)


@extend_schema_view(
    list=extend_schema(
        operation_id="schedules_list", summary="List a flag's scheduled changes in one environment"
    ),
    retrieve=extend_schema(operation_id="schedules_retrieve", summary="Get a scheduled change"),
)
class ScheduledChangeViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ScheduledChange],
):
    """A flag's scheduled changes in one environment, newest first, with their steps."""

    permission_classes = (ModelPermissions,)
    queryset = ScheduledChange.objects.none()  # the schema's model; get_queryset() scopes
    permission_model = ScheduledChange
    serializer_class = ScheduledChangeOutputSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "schedule"
    filter_backends = ()

    def get_state(self) -> FlagState:
        """The flag state named in the URL (404 when there is none)."""
        return get_object_or_404(
            FlagState.objects.select_related("flag", "environment"),
            flag__project=self.get_project(),
            flag__key=self.kwargs["flag"],
            environment__key=self.kwargs["environment"],
        )

    def get_queryset(self) -> QuerySet[ScheduledChange]:
        """The state's scheduled changes with their steps and people."""
        return (
            ScheduledChange.objects.filter(
                state__flag__project__key=self.kwargs["project"],
                state__flag__key=self.kwargs["flag"],
                state__environment__key=self.kwargs["environment"],
            )
            .select_related("state__flag", "state__environment", "created_by", "cancelled_by")
            .prefetch_related(Prefetch("steps", queryset=ScheduledStep.objects.order_by("order")))
            .order_by("-id")
        )

    @extend_schema(
        operation_id="schedules_create",
        summary="Schedule a change or a ramp (protected environments: release managers)",
        request=ScheduledChangeInputSerializer,
        responses={201: ScheduledChangeOutputSerializer, 202: ACCEPTED_RESPONSE},
        examples=[RAMP_EXAMPLE],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create through ``schedule_create``."""
        state = self.get_state()
        data = ScheduledChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        steps = [
            services.StepSpec(
                at=step["at"], action=step["action"], percentage=step.get("percentage")
            )
            for step in data.validated_data["steps"]
        ]
        if state.environment.needs_change_requests:
            change_request = services.schedule_propose(
                state=state,
                steps=steps,
                actor=request.user,
                note=data.validated_data.get("note", ""),
                title=(data.validated_data.get("change_request") or {}).get("title", ""),
            )
            return accepted(request, change_request)
        change = services.schedule_create(
            state=state, steps=steps, actor=request.user, note=data.validated_data.get("note", "")
        )
        body = ScheduledChangeOutputSerializer(self.get_queryset().get(pk=change.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="schedules_cancel",
        summary="Cancel a scheduled change (409 schedule_finished when no step is pending)",
        request=None,
        responses={200: ScheduledChangeOutputSerializer},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Cancel through ``schedule_cancel``: its pending steps never run; the record stays."""
        change = self.get_object()
        services.schedule_cancel(change=change, actor=request.user)
        return Response(ScheduledChangeOutputSerializer(self.get_queryset().get(pk=change.pk)).data)
