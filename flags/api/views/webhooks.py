"""A project's webhooks (Administrators only), their deliveries, and the change-event feed.

Webhooks and deliveries are looked up by id (they have no key); the project by key. A webhook's
signing secret is in the answer to its creation and to ``rotate-secret/``, never anywhere else.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...delivery.changes import Kind
from ...models import ChangeEvent, Environment, Project, Webhook, WebhookDelivery
from ..mixins import ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.webhooks import (
    STATUSES,
    ChangeEventOutputSerializer,
    EventFilterSerializer,
    IssuedWebhookOutputSerializer,
    SecretOutputSerializer,
    WebhookCreateInputSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookOutputSerializer,
    WebhookUpdateInputSerializer,
)

KINDS = frozenset(kind.value for kind in Kind)
# Test deliveries are not changes: the feed (which every role reads) leaves them out.
NOT_CHANGES = (Kind.WEBHOOK_TEST.value,)
WEBHOOK_EXAMPLE = OpenApiExample(
    "Chat relay for production toggles",
    request_only=True,
    value={
        "name": "Chat relay",
        "url": "https://hooks.example.com/flagship",
        "events": ["flag.toggled", "rules.changed"],
        "environment": "production",
    },
)


def with_delivery_counts(webhooks: QuerySet[Webhook]) -> QuerySet[Webhook]:
    """``webhooks`` annotated with ``<status>_count`` for each delivery status, in one query."""
    return webhooks.annotate(
        **{
            f"{state}_count": Count("deliveries", filter=Q(deliveries__status=state))
            for state in STATUSES
        }
    )


class WebhookScopedMixin(ProjectScopedMixin):
    """Views under ``projects/{project}/webhooks/``."""


def webhook_arguments(project: Project, validated: dict[str, Any]) -> dict[str, Any]:
    """Validated webhook input as service arguments (the environment key resolved)."""
    arguments = dict(validated)
    if arguments.get("environment") is not None:
        key = arguments["environment"]
        environment = Environment.objects.filter(project=project, key=key).first()
        if environment is None:
            message = f"Project {project.key} has no environment {key}."
            raise exceptions.ValidationError(
                {"environment": [exceptions.ErrorDetail(message, code="invalid_environment")]}
            )
        arguments["environment"] = environment
    return arguments


@extend_schema_view(
    list=extend_schema(operation_id="webhooks_list", summary="List a project's webhooks"),
    retrieve=extend_schema(operation_id="webhooks_retrieve", summary="Get a webhook"),
)
class WebhookViewSet(
    WebhookScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Webhook],
):
    """A project's webhooks: Administrators only (URLs and receivers' answers are theirs)."""

    permission_classes = (ModelPermissions,)
    queryset = Webhook.objects.none()  # the schema's model; get_queryset() scopes by project
    permission_model = Webhook
    permission_actions = {"rotate_secret": "change", "send_test": "change"}
    serializer_class = WebhookOutputSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "webhook"
    filter_backends = ()

    def get_queryset(self) -> QuerySet[Webhook]:
        """The project's webhooks by name, with their delivery counts."""
        webhooks = Webhook.objects.filter(project=self.get_project()).select_related("environment")
        return with_delivery_counts(webhooks).order_by("name", "id")

    def shown(self, webhook: Webhook) -> Webhook:
        """``webhook`` read again as the list shows it (counts included)."""
        return self.get_queryset().get(pk=webhook.pk)

    @extend_schema(
        operation_id="webhooks_create",
        summary="Subscribe a URL to the project's changes (the secret is in this response only)",
        request=WebhookCreateInputSerializer,
        responses={201: IssuedWebhookOutputSerializer},
        examples=[WEBHOOK_EXAMPLE],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create through ``webhook_create``; the answer holds the signing secret, this once."""
        project = self.get_project()
        data = WebhookCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook, secret = services.webhook_create(
            project=project, actor=request.user, **webhook_arguments(project, data.validated_data)
        )
        body = IssuedWebhookOutputSerializer(self.shown(webhook), context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="webhooks_update",
        summary="Change a webhook",
        request=WebhookUpdateInputSerializer,
        responses={200: WebhookOutputSerializer},
        examples=[WEBHOOK_EXAMPLE],
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change through ``webhook_update``."""
        webhook = self.get_object()
        data = WebhookUpdateInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        arguments = webhook_arguments(self.get_project(), data.validated_data)
        services.webhook_update(webhook=webhook, actor=request.user, **arguments)
        return Response(WebhookOutputSerializer(self.shown(webhook)).data)

    @extend_schema(
        operation_id="webhooks_partial_update",
        summary="Change some fields of a webhook",
        request=WebhookUpdateInputSerializer,
        responses={200: WebhookOutputSerializer},
        examples=[WEBHOOK_EXAMPLE],
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PATCH: the same as PUT, every field optional."""
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        operation_id="webhooks_destroy",
        summary="Delete a webhook and its deliveries (pending ones are never sent)",
        responses={204: None},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete through ``webhook_delete``."""
        services.webhook_delete(webhook=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        summary="Give a webhook a new signing secret (in this response only; the old one stops)",
        request=None,
        responses={200: SecretOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Rotate through ``webhook_rotate_secret``."""
        secret = services.webhook_rotate_secret(webhook=self.get_object(), actor=request.user)
        return Response(SecretOutputSerializer({"secret": secret}).data)

    @extend_schema(
        operation_id="webhooks_test",
        summary="Queue a webhook.test event for this webhook alone",
        request=None,
        responses={201: WebhookDeliveryOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def send_test(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Queue through ``webhook_send_test``; the answer is the pending delivery."""
        delivery = services.webhook_send_test(webhook=self.get_object(), actor=request.user)
        shown = WebhookDelivery.objects.select_related("event").get(pk=delivery.pk)
        body = WebhookDeliveryOutputSerializer(shown).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        operation_id="webhook_deliveries_list",
        summary="A webhook's deliveries, newest first",
    ),
    retrieve=extend_schema(
        operation_id="webhook_deliveries_retrieve", summary="Get a delivery with its last answer"
    ),
)
class WebhookDeliveryViewSet(
    WebhookScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[WebhookDelivery],
):
    """A webhook's deliveries (Administrators only): status, attempts, last answer; redelivery."""

    permission_classes = (ModelPermissions,)
    queryset = WebhookDelivery.objects.none()  # the schema's model; get_queryset() scopes
    permission_model = WebhookDelivery
    permission_actions = {"redeliver": "add"}
    serializer_class = WebhookDeliveryOutputSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "delivery"
    filterset_fields = ("status",)
    ordering_fields = ("created_at",)
    _webhook: Webhook | None = None

    def get_webhook(self) -> Webhook:
        """The webhook named in the URL, of the project named there (404 otherwise)."""
        if self._webhook is None:
            self._webhook = get_object_or_404(
                Webhook, project=self.get_project(), pk=self.kwargs["webhook"]
            )
        return self._webhook

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        """The webhook's deliveries, newest first, with their events."""
        return (
            WebhookDelivery.objects.filter(webhook=self.get_webhook())
            .select_related("event")
            .order_by("-created_at", "-id")
        )

    @extend_schema(
        operation_id="webhook_deliveries_redeliver",
        summary="Send a delivery's event again, as a new delivery due now",
        request=None,
        responses={201: WebhookDeliveryOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Redeliver through ``delivery_redeliver`` (the receiver sees the same event id)."""
        redelivery = services.delivery_redeliver(delivery=self.get_object(), actor=request.user)
        body = WebhookDeliveryOutputSerializer(self.get_queryset().get(pk=redelivery.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


def _holding(field: str, item: dict[str, Any] | str, text: str) -> Q:
    """Rows whose JSON list ``field`` holds ``item``.

    Where the database cannot test JSON containment (SQLite), the stored text is searched for
    ``text``, the item as Django writes it.
    """
    if connection.features.supports_json_field_contains:
        return Q(**{f"{field}__contains": [item]})
    return Q(**{f"{field}__icontains": text})


class ChangeEventFeedView(ProjectScopedMixin, GenericAPIView[ChangeEvent]):
    """A project's change events, newest first, as webhooks receive them (every role reads)."""

    permission_classes = (ModelPermissions,)
    permission_model = ChangeEvent
    queryset = ChangeEvent.objects.none()  # the schema's model; get() scopes by project
    serializer_class = ChangeEventOutputSerializer
    filter_backends = ()

    @extend_schema(
        operation_id="events_list",
        summary="A project's change events, newest first (the payloads webhooks receive)",
        parameters=[
            OpenApiParameter("type", str, description="Only events of this type (flag.toggled)."),
            OpenApiParameter(
                "flag",
                str,
                description="Only events concerning this flag (key, a deleted one's too).",
            ),
            OpenApiParameter(
                "environment", str, description="Only events concerning this environment (key)."
            ),
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                description="Only events at or after this time (ISO 8601).",
            ),
            OpenApiParameter("page", int, description="Page number."),
        ],
        responses={200: ChangeEventOutputSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One page of events, filtered by type, flag, environment and time."""
        project = self.get_project()
        # An empty filter (?type=, as forms and clients send for "any") is left out, not refused.
        params = {
            name: value for name, value in request.query_params.dict().items() if value.strip()
        }
        filters = EventFilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        events = ChangeEvent.objects.filter(project=project).exclude(kind__in=NOT_CHANGES)
        if "type" in given:
            if given["type"] not in KINDS:
                message = f"Unknown event type: {given['type']}."
                raise exceptions.ValidationError(
                    {"type": [exceptions.ErrorDetail(message, code="invalid_event")]}
                )
            events = events.filter(kind=given["type"])
        if "flag" in given:
            flag = given["flag"]
            events = events.filter(_holding("flags", flag, f'"{flag}"'))
        if "environment" in given:
            environment = Environment.objects.filter(project=project, key=given["environment"])
            found = environment.values_list("pk", flat=True).first()
            if found is None:
                key = given["environment"]
                raise exceptions.NotFound(f"No environment {key} in project {project.key}.")
            events = events.filter(_holding("environments", {"id": found}, f'"id": {found},'))
        if "since" in given:
            events = events.filter(occurred_at__gte=given["since"])
        page = self.paginate_queryset(events.order_by("-occurred_at", "-id"))
        return self.get_paginated_response(self.get_serializer(page or [], many=True).data)
