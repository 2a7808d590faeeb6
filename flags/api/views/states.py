"""A flag in one environment: read with an ETag, written with If-Match, toggled, and its history."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...history import feed as history
from ...models import Condition, FlagState, Prerequisite, Rule
from ..mixins import HistoryMixin, PreconditionFailed, PreconditionRequired, ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.history import ChangePageSerializer
from ..serializers.targeting import (
    FlagStateInputSerializer,
    FlagStateOutputSerializer,
    ToggleInputSerializer,
)
from ..state_writes import proposed_or_written, state_write
from .change_requests import ACCEPTED_RESPONSE, accepted

ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='The ETag of the state you read, e.g. "3".',
)
STATE_EXAMPLE = OpenApiExample(
    "Beta testers get it",
    request_only=True,
    value={
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "off"},
        "rules": [
            {
                "description": "Beta testers",
                "segments": ["beta-testers"],
                "conditions": [{"attribute": "country", "operator": "in", "values": ["NL"]}],
                "rollout": 50_000,
                "serve": {"variant": "on"},
            }
        ],
        "prerequisites": [],
    },
)


def expected_version(request: Request, *, required: bool) -> int | None:
    """The version named by ``If-Match`` (``*`` or absent-but-optional: ``None``).

    Missing when required: 428. A value that cannot be one of our ETags can never match: 412.
    """
    header = request.headers.get("If-Match")
    if header is None:
        if required:
            raise PreconditionRequired()
        return None
    if header.strip() == "*":
        return None
    match = ETAG.match(header)
    if match is None:
        raise PreconditionFailed("If-Match does not name a version of this state.")
    return int(match.group(1))


class FlagStateViewSet(ProjectScopedMixin, HistoryMixin, viewsets.GenericViewSet[FlagState]):
    """A flag's state in one environment, read by every role.

    Written by Editors (Release managers in protected environments), each write naming the
    version it changes. In an environment that takes change requests a write becomes one
    (202 Accepted, with ``Location``), unless it changes nothing (200, the state as it is).
    """

    permission_classes = (ModelPermissions,)
    queryset = FlagState.objects.none()  # the schema's model; get_queryset() scopes
    permission_model = FlagState
    permission_actions = {"toggle": "change", "history": "view"}
    serializer_class = FlagStateOutputSerializer
    filter_backends = ()
    pagination_class = None

    def get_queryset(self) -> QuerySet[FlagState]:
        """States of the project's flags with their targeting prefetched."""
        return (
            FlagState.objects.filter(flag__project=self.get_project())
            .select_related("flag", "environment", "off_variant")
            .prefetch_related(
                Prefetch(
                    "rules",
                    queryset=Rule.objects.order_by("order", "id").prefetch_related(
                        Prefetch("conditions", queryset=Condition.objects.order_by("order", "id")),
                        "segments",
                    ),
                ),
                Prefetch("prerequisites", queryset=Prerequisite.objects.select_related("flag")),
            )
        )

    def get_object(self) -> FlagState:
        """The state of the flag and environment named in the URL."""
        return get_object_or_404(
            self.get_queryset(),
            flag__key=self.kwargs["flag"],
            environment__key=self.kwargs["environment"],
        )

    def rendered(self, state: FlagState) -> Response:
        """The state (re-read) with its version as the ETag."""
        fresh = self.get_queryset().get(pk=state.pk)
        return Response(
            FlagStateOutputSerializer(fresh).data, headers={"ETag": f'"{fresh.version}"'}
        )

    @extend_schema(operation_id="flag_states_retrieve", summary="Get a flag in one environment")
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The state, with ``ETag: "<version>"``."""
        return self.rendered(self.get_object())

    @extend_schema(
        operation_id="flag_states_update",
        summary="Replace a flag's state in one environment (If-Match required)",
        parameters=[IF_MATCH],
        request=FlagStateInputSerializer,
        responses={200: FlagStateOutputSerializer, 202: ACCEPTED_RESPONSE},
        examples=[STATE_EXAMPLE],
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PUT: every field; rules and prerequisites default to none."""
        partial = kwargs.get("partial", False)
        expected = expected_version(request, required=True)
        data = FlagStateInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        validated = dict(data.validated_data)
        text = validated.pop("change_request", None)
        if not partial:
            validated.setdefault("rules", [])
            validated.setdefault("prerequisites", [])
        state = self.get_object()
        change_request = proposed_or_written(
            request.user,
            state,
            text,
            lambda: state_write(state=state, data=validated, actor=request.user, expected=expected),
        )
        if change_request is not None:
            return accepted(request, change_request)
        return self.rendered(state)

    @extend_schema(
        operation_id="flag_states_partial_update",
        summary="Change part of a flag's state in one environment (If-Match required)",
        parameters=[IF_MATCH],
        request=FlagStateInputSerializer(partial=True),
        responses={200: FlagStateOutputSerializer, 202: ACCEPTED_RESPONSE},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: only the fields given (rules and prerequisites, if given, replace)."""
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        operation_id="flag_states_toggle",
        summary="Switch a flag on or off in one environment (If-Match optional)",
        parameters=[IF_MATCH],
        request=ToggleInputSerializer,
        responses={200: FlagStateOutputSerializer, 202: ACCEPTED_RESPONSE},
        examples=[OpenApiExample("On", value={"enabled": True}, request_only=True)],
    )
    def toggle(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Switch through ``flag_toggle``."""
        expected = expected_version(request, required=False)
        data = ToggleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = self.get_object()
        change_request = proposed_or_written(
            request.user,
            state,
            data.validated_data.get("change_request"),
            lambda: services.flag_toggle(
                state=state,
                enabled=data.validated_data["enabled"],
                actor=request.user,
                expected_version=expected,
            ),
        )
        if change_request is not None:
            return accepted(request, change_request)
        return self.rendered(state)

    @extend_schema(
        operation_id="flag_states_history",
        summary="Changes to a flag's state, rules and prerequisites in one environment",
        responses={200: ChangePageSerializer},
    )
    def history(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The state's history merged with its rules', conditions' and prerequisites'."""
        state = self.get_object()
        rule_ids = history.historical("rule")._default_manager.filter(state_id=state.pk)
        rows = history.merged(
            [
                history.part("flagstate", Q(id=state.pk)),
                history.part("rule", Q(state_id=state.pk)),
                history.part("condition", Q(rule_id__in=rule_ids.values("id"))),
                history.part("prerequisite", Q(state_id=state.pk)),
            ]
        )
        return self.history_response(rows)
