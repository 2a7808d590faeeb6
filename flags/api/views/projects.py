"""Projects, their environments, and tags."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ... import capabilities, services
from ...models import Environment, Project, Tag
from ..mixins import ManagementViewMixin, ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.projects import (
    EnvironmentCreateInputSerializer,
    EnvironmentOutputSerializer,
    EnvironmentUpdateInputSerializer,
    ProjectCreateInputSerializer,
    ProjectOutputSerializer,
    ProjectUpdateInputSerializer,
    TagInputSerializer,
    TagOutputSerializer,
)


@extend_schema_view(
    list=extend_schema(operation_id="projects_list", summary="List projects"),
    retrieve=extend_schema(operation_id="projects_retrieve", summary="Get a project"),
)
class ProjectViewSet(
    ManagementViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Project],
):
    """Projects: anyone with a role reads them; Administrators create and change them."""

    permission_classes = (ModelPermissions,)
    permission_model = Project
    serializer_class = ProjectOutputSerializer
    lookup_field = "key"
    lookup_url_kwarg = "project"
    search_fields = ("key", "name", "description")
    ordering_fields = ("key", "name", "created_at")
    filterset_fields = ("key",)

    def get_queryset(self) -> QuerySet[Project]:
        """Every project the caller may see, by name (FlagShip's own last, administrators only)."""
        projects = Project.objects.order_by("system", "name", "key")
        return capabilities.visible(projects, self.request.user, "")

    @extend_schema(
        operation_id="projects_create",
        summary="Create a project (with development, staging and a protected production)",
        request=ProjectCreateInputSerializer,
        responses={201: ProjectOutputSerializer},
        examples=[
            OpenApiExample(
                "Checkout", value={"key": "checkout", "name": "Checkout"}, request_only=True
            )
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a project through ``project_create``."""
        data = ProjectCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(**data.validated_data, actor=request.user)
        body = ProjectOutputSerializer(project).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="projects_update",
        summary="Change a project",
        request=ProjectUpdateInputSerializer,
        responses={200: ProjectOutputSerializer},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change a project through ``project_update``."""
        project = self.get_object()
        data = ProjectUpdateInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        project = services.project_update(
            project=project, actor=request.user, **data.validated_data
        )
        return Response(ProjectOutputSerializer(project).data)

    @extend_schema(
        operation_id="projects_partial_update",
        summary="Change some fields of a project",
        request=ProjectUpdateInputSerializer,
        responses={200: ProjectOutputSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: the same as PUT, every field optional."""
        return self.update(request, *args, partial=True, **kwargs)


@extend_schema_view(
    list=extend_schema(operation_id="environments_list", summary="List a project's environments"),
    retrieve=extend_schema(operation_id="environments_retrieve", summary="Get an environment"),
)
class EnvironmentViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Environment],
):
    """A project's environments: read by every role, created and changed by Administrators."""

    permission_classes = (ModelPermissions,)
    queryset = Environment.objects.none()  # the schema's model; get_queryset() scopes
    permission_model = Environment
    serializer_class = EnvironmentOutputSerializer
    lookup_field = "key"
    lookup_url_kwarg = "environment"
    filter_backends = ()

    def get_queryset(self) -> QuerySet[Environment]:
        """The project's environments in column order."""
        return Environment.objects.filter(project=self.get_project()).order_by("order", "key")

    @extend_schema(
        operation_id="environments_create",
        summary="Add an environment (every flag gets a switched-off state there)",
        request=EnvironmentCreateInputSerializer,
        responses={201: EnvironmentOutputSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create through ``environment_create``."""
        data = EnvironmentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        environment = services.environment_create(
            project=self.get_project(), actor=request.user, **data.validated_data
        )
        body = EnvironmentOutputSerializer(environment).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="environments_update",
        summary="Change an environment",
        request=EnvironmentUpdateInputSerializer,
        responses={200: EnvironmentOutputSerializer},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change through ``environment_update``."""
        environment = self.get_object()
        data = EnvironmentUpdateInputSerializer(
            data=request.data, partial=kwargs.get("partial", False)
        )
        data.is_valid(raise_exception=True)
        environment = services.environment_update(
            environment=environment, actor=request.user, **data.validated_data
        )
        return Response(EnvironmentOutputSerializer(environment).data)

    @extend_schema(
        operation_id="environments_partial_update",
        summary="Change some fields of an environment",
        request=EnvironmentUpdateInputSerializer,
        responses={200: EnvironmentOutputSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: the same as PUT, every field optional."""
        return self.update(request, *args, partial=True, **kwargs)


@extend_schema_view(
    list=extend_schema(operation_id="tags_list", summary="List tags"),
    retrieve=extend_schema(operation_id="tags_retrieve", summary="Get a tag"),
)
class TagViewSet(
    ManagementViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Tag],
):
    """Tags (global): read by every role, created by Editors and up."""

    permission_classes = (ModelPermissions,)
    permission_model = Tag
    serializer_class = TagOutputSerializer
    lookup_field = "name"
    lookup_url_kwarg = "tag"
    search_fields = ("name",)
    ordering_fields = ("name",)
    filterset_fields = ("name",)

    def get_queryset(self) -> QuerySet[Tag]:
        """Every tag, by name."""
        return Tag.objects.order_by("name")

    def get_object(self) -> Tag:
        """A tag by name, ignoring case (names are unique regardless of case)."""
        return get_object_or_404(self.get_queryset(), name__iexact=self.kwargs["tag"])

    @extend_schema(
        operation_id="tags_create",
        summary="Create a tag",
        request=TagInputSerializer,
        responses={201: TagOutputSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create through ``tag_create``."""
        data = TagInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tag = services.tag_create(**data.validated_data, actor=request.user)
        return Response(TagOutputSerializer(tag).data, status=status.HTTP_201_CREATED)
