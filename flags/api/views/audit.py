"""The audit feed: recent changes across every model, newest first."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ... import capabilities
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
        given = filters.validated_data
        project_id = environment_id = flag_id = user_id = None
        if "project" in given:
            project = _found(
                capabilities.visible(
                    Project.objects.filter(key=given["project"]), request.user, ""
                ),
                "project",
                given,
            )
            project_id = project.pk
            if "environment" in given:
                environments = project.environments.filter(key=given["environment"])
                environment_id = _found(environments, "environment", given).pk
            if "flag" in given:
                # A deleted flag's key still finds its history.
                flag_id = history.flag_id_for_key(project.pk, given["flag"])
                if flag_id is None:
                    raise NotFound(f"No flag {given['flag']} in project {given['project']}.")
        if "user" in given:
            users = get_user_model()._default_manager.filter(username=given["user"])
            user_id = _found(users, "user", given).pk
        rows = history.audit_rows(
            project_id=project_id,
            environment_id=environment_id,
            flag_id=flag_id,
            user_id=user_id,
            since=given.get("since"),
            until=given.get("until"),
            hidden_project_id=capabilities.hidden_project_id(request.user),
        )
        return self.history_response(rows)


def _found[M: Model](rows: QuerySet[M], name: str, given: dict[str, Any]) -> M:
    """The one object a filter names, or 404 saying which filter named nothing."""
    found = rows.first()
    if found is None:
        where = f" in project {given['project']}" if name == "environment" else ""
        raise NotFound(f"No {name} {given[name]}{where}.")
    return found
