"""Flags of a project, their variants, archiving, and their history."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...history import feed as history
from ...models import Flag, FlagState, Tag, Variant
from ..mixins import HistoryMixin, ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.flags import (
    FlagCreateInputSerializer,
    FlagOutputSerializer,
    FlagUpdateInputSerializer,
    VariantCreateInputSerializer,
    VariantOutputSerializer,
    VariantUpdateInputSerializer,
)
from ..serializers.history import ChangeOutputSerializer


def tags_named(names: list[str]) -> list[Tag]:
    """The tags with these names (400 naming any that do not exist)."""
    query = Q()
    for name in names:
        query |= Q(name__iexact=name)
    tags = list(Tag.objects.filter(query)) if names else []
    known = {tag.name.lower() for tag in tags}
    missing = [name for name in names if name.lower() not in known]
    if missing:
        raise exceptions.ValidationError({"tags": [f"Unknown tag: {name}." for name in missing]})
    return tags


def owner_named(username: str | None) -> Any:
    """The user with this username (400 when there is none)."""
    if username is None:
        return None
    owner = get_user_model()._default_manager.filter(username=username).first()
    if owner is None:
        raise exceptions.ValidationError({"owner": [f"Unknown user: {username}."]})
    return owner


def flag_arguments(validated: dict[str, Any]) -> dict[str, Any]:
    """Validated flag input as service arguments (tag names and usernames resolved)."""
    arguments = dict(validated)
    if "tags" in arguments:
        arguments["tags"] = tags_named(arguments["tags"])
    if "owner" in arguments:
        arguments["owner"] = owner_named(arguments["owner"])
    if "variants" in arguments:
        arguments["variants"] = [(v["key"], v["value"]) for v in arguments["variants"]]
    return arguments


@extend_schema_view(
    list=extend_schema(
        operation_id="flags_list",
        summary="List a project's flags",
        parameters=[OpenApiParameter("tag", str, description="Only flags with this tag (name).")],
    ),
    retrieve=extend_schema(operation_id="flags_retrieve", summary="Get a flag"),
)
class FlagViewSet(
    ProjectScopedMixin,
    HistoryMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Flag],
):
    """A project's flags: read by every role, written by Editors and up."""

    permission_classes = (ModelPermissions,)
    queryset = Flag.objects.none()  # the schema's model; get_queryset() scopes by project
    permission_model = Flag
    permission_actions = {"archive": "change", "unarchive": "change", "history": "view"}
    serializer_class = FlagOutputSerializer
    lookup_field = "key"
    lookup_url_kwarg = "flag"
    filterset_fields = ("lifecycle", "archived", "kind")
    search_fields = ("key", "name", "description")
    ordering_fields = ("key", "name", "created_at", "updated_at")

    def get_queryset(self) -> QuerySet[Flag]:
        """The project's flags with what the list shows, in a fixed number of queries."""
        flags = Flag.objects.filter(project=self.get_project())
        tag = self.request.query_params.get("tag") if self.action == "list" else None
        if tag:
            flags = flags.filter(tags__name__iexact=tag)
        return (
            flags.select_related("owner", "staleness")
            .prefetch_related(
                "variants",
                "tags",
                Prefetch(
                    "states",
                    queryset=FlagState.objects.select_related("environment").order_by(
                        "environment__order"
                    ),
                ),
            )
            .order_by("key")
        )

    @extend_schema(
        operation_id="flags_create",
        summary="Create a flag (switched off in every environment)",
        request=FlagCreateInputSerializer,
        responses={201: FlagOutputSerializer},
        examples=[
            OpenApiExample(
                "Boolean flag",
                value={"key": "new-checkout", "name": "New checkout", "tags": ["payments"]},
                request_only=True,
            ),
            OpenApiExample(
                "String flag",
                value={
                    "key": "banner-text",
                    "name": "Banner text",
                    "kind": "string",
                    "variants": [{"key": "none", "value": ""}, {"key": "sale", "value": "Sale!"}],
                },
                request_only=True,
            ),
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create through ``flag_create``."""
        data = FlagCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flag = services.flag_create(
            project=self.get_project(), actor=request.user, **flag_arguments(data.validated_data)
        )
        body = FlagOutputSerializer(self.get_queryset().get(pk=flag.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="flags_update",
        summary="Change a flag",
        request=FlagUpdateInputSerializer,
        responses={200: FlagOutputSerializer},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change through ``flag_update``."""
        flag = self.get_object()
        data = FlagUpdateInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        services.flag_update(flag=flag, actor=request.user, **flag_arguments(data.validated_data))
        return Response(FlagOutputSerializer(self.get_queryset().get(pk=flag.pk)).data)

    @extend_schema(
        operation_id="flags_partial_update",
        summary="Change some fields of a flag",
        request=FlagUpdateInputSerializer,
        responses={200: FlagOutputSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: the same as PUT, every field optional."""
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        operation_id="flags_archive", request=None, responses={200: FlagOutputSerializer}
    )
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Archive a flag (409 while another live flag depends on it)."""
        flag = services.flag_archive(flag=self.get_object(), actor=request.user)
        return Response(FlagOutputSerializer(self.get_queryset().get(pk=flag.pk)).data)

    @extend_schema(
        operation_id="flags_unarchive", request=None, responses={200: FlagOutputSerializer}
    )
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Bring an archived flag back."""
        flag = services.flag_unarchive(flag=self.get_object(), actor=request.user)
        return Response(FlagOutputSerializer(self.get_queryset().get(pk=flag.pk)).data)

    @extend_schema(
        operation_id="flags_history",
        summary="Changes to a flag and its variants, newest first",
        responses={200: ChangeOutputSerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The flag's history merged with its variants'."""
        flag = self.get_object()
        rows = history.merged(
            [
                history.part("flag", Q(id=flag.pk)),
                history.part("variant", Q(flag_id=flag.pk)),
            ]
        )
        return self.history_response(rows)


@extend_schema_view(
    list=extend_schema(operation_id="variants_list", summary="List a flag's variants"),
    retrieve=extend_schema(operation_id="variants_retrieve", summary="Get a variant"),
)
class VariantViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Variant],
):
    """A flag's variants: read by every role, written by Editors and up."""

    permission_classes = (ModelPermissions,)
    queryset = Variant.objects.none()  # the schema's model; get_queryset() scopes by flag
    permission_model = Variant
    serializer_class = VariantOutputSerializer
    lookup_field = "key"
    lookup_url_kwarg = "variant"
    filter_backends = ()
    pagination_class = None

    def get_flag(self) -> Flag:
        """The flag named in the URL."""
        return get_object_or_404(Flag, project=self.get_project(), key=self.kwargs["flag"])

    def get_queryset(self) -> QuerySet[Variant]:
        """The flag's variants in order."""
        return Variant.objects.filter(
            flag__project=self.get_project(), flag__key=self.kwargs["flag"]
        ).select_related("flag")

    @extend_schema(
        operation_id="variants_create",
        request=VariantCreateInputSerializer,
        responses={201: VariantOutputSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Add a variant through ``variant_create``."""
        flag = self.get_flag()
        data = VariantCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        variant = services.variant_create(flag=flag, actor=request.user, **data.validated_data)
        return Response(VariantOutputSerializer(variant).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="variants_update",
        request=VariantUpdateInputSerializer,
        responses={200: VariantOutputSerializer},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change a variant through ``variant_update``."""
        variant = self.get_object()
        data = VariantUpdateInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        variant = services.variant_update(
            variant=variant, actor=request.user, **data.validated_data
        )
        return Response(VariantOutputSerializer(variant).data)

    @extend_schema(
        operation_id="variants_partial_update",
        request=VariantUpdateInputSerializer,
        responses={200: VariantOutputSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: the same as PUT, every field optional."""
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(operation_id="variants_destroy", responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Remove a variant nobody serves (409 otherwise)."""
        services.variant_delete(variant=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
