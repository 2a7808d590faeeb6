"""Management API routes (under ``api/<version>/``): every lookup is by key, never by id."""

from typing import Any

from django.urls import URLPattern, URLResolver, path

from flagship.routing import slash_optional

from .views.audit import AuditView
from .views.flags import FlagViewSet, VariantViewSet
from .views.projects import EnvironmentViewSet, ProjectViewSet, TagViewSet
from .views.segments import SegmentViewSet
from .views.states import FlagStateViewSet

LIST: dict[str, Any] = {"get": "list", "post": "create"}
DETAIL: dict[str, Any] = {"get": "retrieve", "put": "update", "patch": "partial_update"}
DETAIL_DELETE: dict[str, Any] = {**DETAIL, "delete": "destroy"}

PROJECT = "projects/<str:project>/"
FLAG = PROJECT + "flags/<str:flag>/"
STATE = FLAG + "environments/<str:environment>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path("projects/", ProjectViewSet.as_view(LIST), name="project-list"),
    path(PROJECT, ProjectViewSet.as_view(DETAIL), name="project-detail"),
    path(PROJECT + "environments/", EnvironmentViewSet.as_view(LIST), name="environment-list"),
    path(
        PROJECT + "environments/<str:environment>/",
        EnvironmentViewSet.as_view(DETAIL),
        name="environment-detail",
    ),
    path(PROJECT + "flags/", FlagViewSet.as_view(LIST), name="flag-list"),
    path(FLAG, FlagViewSet.as_view(DETAIL), name="flag-detail"),
    path(FLAG + "archive/", FlagViewSet.as_view({"post": "archive"}), name="flag-archive"),
    path(FLAG + "unarchive/", FlagViewSet.as_view({"post": "unarchive"}), name="flag-unarchive"),
    path(FLAG + "history/", FlagViewSet.as_view({"get": "history"}), name="flag-history"),
    path(FLAG + "variants/", VariantViewSet.as_view(LIST), name="variant-list"),
    path(
        FLAG + "variants/<str:variant>/",
        VariantViewSet.as_view(DETAIL_DELETE),
        name="variant-detail",
    ),
    path(STATE, FlagStateViewSet.as_view(DETAIL), name="flag-state"),
    path(STATE + "toggle/", FlagStateViewSet.as_view({"post": "toggle"}), name="flag-state-toggle"),
    path(
        STATE + "history/", FlagStateViewSet.as_view({"get": "history"}), name="flag-state-history"
    ),
    path(PROJECT + "segments/", SegmentViewSet.as_view(LIST), name="segment-list"),
    path(
        PROJECT + "segments/<str:segment>/",
        SegmentViewSet.as_view(DETAIL_DELETE),
        name="segment-detail",
    ),
    path(
        PROJECT + "segments/<str:segment>/history/",
        SegmentViewSet.as_view({"get": "history"}),
        name="segment-history",
    ),
    path("tags/", TagViewSet.as_view(LIST), name="tag-list"),
    path("tags/<str:tag>/", TagViewSet.as_view({"get": "retrieve"}), name="tag-detail"),
    path("audit/", AuditView.as_view(), name="audit"),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
