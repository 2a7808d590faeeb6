"""Project export and import (docs/export-format.md) through the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...models import Project
from ..mixins import ManagementViewMixin, ProjectScopedMixin
from ..permissions import ModelPermissions, PersonRequired
from ..serializers.portability import ImportOptionsSerializer, ImportPlanOutputSerializer

EXAMPLE_DOCUMENT: dict[str, Any] = {
    "format": "flagship-project",
    "version": 1,
    "project": {"key": "shop", "name": "Shop", "description": "", "reason_required": False},
    "environments": [
        {"key": "staging", "name": "Staging", "color": "#f59e0b", "order": 0, "protected": False}
    ],
    "tags": [],
    "segments": [],
    "flags": [],
}


class ImportPermission(PersonRequired):
    """An import may create and change a project: it needs both permissions (Administrators)."""

    message = "Only Administrators may import a project."
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        """A person (or admin token) with ``add_project`` and ``change_project``."""
        if not super().has_permission(request, view):
            return False
        return bool(request.user.has_perms(["flags.add_project", "flags.change_project"]))


class ProjectExportView(ProjectScopedMixin, GenericAPIView[Any]):
    """A project as its export document (every role that may read projects)."""

    permission_classes = (ModelPermissions,)
    permission_model = Project
    filter_backends = ()
    pagination_class = None

    @extend_schema(
        operation_id="projects_export",
        summary="Export a project (flags, variants, segments, states per environment)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The export document (docs/export-format.md)."""
        return Response(services.project_export(self.get_project()))


class ProjectImportView(ManagementViewMixin, GenericAPIView[Any]):
    """Import a project export, all or nothing; ``dry_run=true`` returns the plan only."""

    permission_classes = (ImportPermission,)
    filter_backends = ()
    pagination_class = None
    serializer_class = ImportPlanOutputSerializer

    @extend_schema(
        operation_id="projects_import",
        summary="Import a project export (merge or replace; dry run returns the diff)",
        parameters=[
            OpenApiParameter("mode", str, enum=["merge", "replace"], description="Default merge."),
            OpenApiParameter("dry_run", bool, description="Compute the plan, write nothing."),
            OpenApiParameter("project", str, description="Import under this project key."),
        ],
        request=OpenApiTypes.OBJECT,
        responses={200: ImportPlanOutputSerializer},
        examples=[OpenApiExample("An empty project", value=EXAMPLE_DOCUMENT, request_only=True)],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Check, apply (or plan), and return the plan."""
        options = ImportOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        plan = services.project_import(
            request.data,
            actor=request.user,
            mode=options.validated_data["mode"],
            dry_run=options.validated_data["dry_run"],
            project_key=options.validated_data.get("project"),
        )
        return Response(ImportPlanOutputSerializer(plan.as_dict()).data)
