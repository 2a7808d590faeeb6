"""Management API routes (under ``api/<version>/``): lookups by key, webhooks' by id.

Webhooks and their deliveries have no key: they are named by id, under their project's key.
"""

from typing import Any

from django.urls import URLPattern, URLResolver, path

from flagship.routing import slash_optional

from .views.audit import AuditView
from .views.change_requests import ChangeRequestViewSet
from .views.flags import FlagViewSet, VariantViewSet
from .views.portability import ProjectExportView, ProjectImportView
from .views.projects import EnvironmentViewSet, ProjectViewSet, TagViewSet
from .views.promotion import PromotionView
from .views.schedules import ScheduledChangeViewSet
from .views.segments import SegmentViewSet
from .views.states import FlagStateViewSet
from .views.webhooks import ChangeEventFeedView, WebhookDeliveryViewSet, WebhookViewSet

LIST: dict[str, Any] = {"get": "list", "post": "create"}
DETAIL: dict[str, Any] = {"get": "retrieve", "put": "update", "patch": "partial_update"}
DETAIL_DELETE: dict[str, Any] = {**DETAIL, "delete": "destroy"}

PROJECT = "projects/<str:project>/"
FLAG = PROJECT + "flags/<str:flag>/"
STATE = FLAG + "environments/<str:environment>/"
WEBHOOK = PROJECT + "webhooks/<int:webhook>/"
DELIVERY = WEBHOOK + "deliveries/<int:delivery>/"
CHANGE_REQUEST = PROJECT + "change-requests/<int:change_request>/"

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
    path(
        STATE + "schedules/",
        ScheduledChangeViewSet.as_view(LIST),
        name="schedule-list",
    ),
    path(
        STATE + "schedules/<int:schedule>/",
        ScheduledChangeViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="schedule-detail",
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
    path(PROJECT + "webhooks/", WebhookViewSet.as_view(LIST), name="webhook-list"),
    path(WEBHOOK, WebhookViewSet.as_view(DETAIL_DELETE), name="webhook-detail"),
    path(
        WEBHOOK + "rotate-secret/",
        WebhookViewSet.as_view({"post": "rotate_secret"}),
        name="webhook-rotate-secret",
    ),
    path(WEBHOOK + "test/", WebhookViewSet.as_view({"post": "send_test"}), name="webhook-test"),
    path(
        WEBHOOK + "deliveries/",
        WebhookDeliveryViewSet.as_view({"get": "list"}),
        name="webhook-delivery-list",
    ),
    path(
        DELIVERY,
        WebhookDeliveryViewSet.as_view({"get": "retrieve"}),
        name="webhook-delivery-detail",
    ),
    path(
        DELIVERY + "redeliver/",
        WebhookDeliveryViewSet.as_view({"post": "redeliver"}),
        name="webhook-delivery-redeliver",
    ),
    path(PROJECT + "events/", ChangeEventFeedView.as_view(), name="event-list"),
    path(PROJECT + "promote/", PromotionView.as_view(), name="promote"),
    path(
        PROJECT + "change-requests/",
        ChangeRequestViewSet.as_view({"get": "list"}),
        name="change-request-list",
    ),
    path(
        CHANGE_REQUEST,
        ChangeRequestViewSet.as_view({"get": "retrieve"}),
        name="change-request-detail",
    ),
    *(
        path(
            CHANGE_REQUEST + f"{action}/",
            ChangeRequestViewSet.as_view({"post": action}),
            name=f"change-request-{action}",
        )
        for action in ("approve", "reject", "apply", "rebase", "withdraw")
    ),
    path(PROJECT + "export/", ProjectExportView.as_view(), name="project-export"),
    path("import/", ProjectImportView.as_view(), name="project-import"),
    path("tags/", TagViewSet.as_view(LIST), name="tag-list"),
    path("tags/<str:tag>/", TagViewSet.as_view({"get": "retrieve"}), name="tag-detail"),
    path("audit/", AuditView.as_view(), name="audit"),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
