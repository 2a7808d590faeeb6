"""Webhooks, their deliveries, and the change-event feed."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ...models import ChangeEvent, Environment, Webhook, WebhookDelivery
from .base import StrictBooleanField, StrictInputSerializer

EVENTS_HELP = (
    "Event types to send (for example flag.toggled; docs/webhooks.md lists them); "
    "empty for every type."
)
STATUSES: tuple[str, ...] = tuple(WebhookDelivery.Status.values)
ENVIRONMENT_HELP = (
    "Key of one of the project's environments: only events concerning it are sent. "
    "Null for every environment of the project."
)


class DeliveryCountsSerializer(serializers.Serializer[Any]):
    """How many deliveries a webhook has in each status."""

    pending = serializers.IntegerField(help_text="Waiting for their next attempt.")
    delivered = serializers.IntegerField(help_text="Answered with a 2xx.")
    dead = serializers.IntegerField(help_text="Given up after the last attempt.")


class WebhookOutputSerializer(serializers.ModelSerializer[Webhook]):
    """A webhook as the API shows it: never its secret, only the secret's last characters."""

    environment: serializers.SlugRelatedField[Environment] = serializers.SlugRelatedField(
        slug_field="key", read_only=True, allow_null=True, help_text=ENVIRONMENT_HELP
    )
    events = serializers.ListField(child=serializers.CharField(), help_text=EVENTS_HELP)
    deliveries = serializers.SerializerMethodField()

    class Meta:
        model = Webhook
        fields: tuple[str, ...] = (
            "id",
            "name",
            "url",
            "environment",
            "events",
            "active",
            "secret_hint",
            "created_at",
            "deliveries",
        )
        read_only_fields: tuple[str, ...] = fields

    @extend_schema_field(DeliveryCountsSerializer)
    def get_deliveries(self, webhook: Webhook) -> dict[str, int]:
        """Counts by status, annotated as ``<status>_count`` by the views' querysets."""
        return {status: int(getattr(webhook, f"{status}_count", 0)) for status in STATUSES}


class IssuedWebhookOutputSerializer(WebhookOutputSerializer):
    """A webhook just created, with its signing secret: the only time the secret is shown."""

    secret = serializers.SerializerMethodField(
        help_text="The signing secret (whsec_…): store it now, it is never shown again."
    )

    class Meta(WebhookOutputSerializer.Meta):
        fields = (*WebhookOutputSerializer.Meta.fields, "secret")
        read_only_fields = fields

    def get_secret(self, webhook: Webhook) -> str:
        """The secret, passed in the context by the view that created the webhook."""
        secret: str = self.context["secret"]
        return secret


class WebhookUpdateInputSerializer(StrictInputSerializer):
    """What may change on a webhook (never its project or its secret: rotate that)."""

    name = serializers.CharField(max_length=100, required=False)
    url = serializers.URLField(
        max_length=2000,
        required=False,
        help_text="http or https; private and loopback addresses are refused "
        "(`address_refused`) unless FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS allows them.",
    )
    events = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        max_length=100,
        help_text=EVENTS_HELP + " An unknown type is refused (`invalid_event`).",
    )
    environment = serializers.CharField(
        max_length=50,
        required=False,
        allow_null=True,
        help_text=ENVIRONMENT_HELP + " A key the project does not have is refused "
        "(`invalid_environment`).",
    )
    active = StrictBooleanField(required=False, help_text="Inactive webhooks receive nothing.")


class WebhookCreateInputSerializer(WebhookUpdateInputSerializer):
    """What creating a webhook takes (its secret is generated)."""

    name = serializers.CharField(max_length=100)
    url = serializers.URLField(
        max_length=2000,
        help_text="http or https; private and loopback addresses are refused "
        "(`address_refused`) unless FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS allows them.",
    )


class SecretOutputSerializer(serializers.Serializer[Any]):
    """A webhook's new signing secret, shown this once."""

    secret = serializers.CharField(
        help_text="The new signing secret (whsec_…); the old one stopped working."
    )


class ActorSerializer(serializers.Serializer[Any]):
    """Who made a change."""

    id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField()


class EventProjectSerializer(serializers.Serializer[Any]):
    """The project of a change (``id`` is null once the project is gone)."""

    id = serializers.IntegerField(allow_null=True)
    key = serializers.CharField()


class EventEnvironmentSerializer(serializers.Serializer[Any]):
    """An environment a change concerns."""

    id = serializers.IntegerField()
    key = serializers.CharField()


class EventDataSerializer(serializers.Serializer[Any]):
    """What changed: the values before and after (null where there was none)."""

    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class ChangeEventOutputSerializer(serializers.Serializer[ChangeEvent]):
    """A change event exactly as webhooks receive it (``ChangeEvent.payload``)."""

    id = serializers.UUIDField()
    type = serializers.CharField(help_text="The event type, for example flag.toggled.")
    occurred_at = serializers.DateTimeField()
    project = EventProjectSerializer()
    environments = EventEnvironmentSerializer(many=True)
    flags = serializers.ListField(child=serializers.CharField(), help_text="Flag keys.")
    actor = ActorSerializer(allow_null=True, help_text="Null for the system (commands).")
    reason = serializers.CharField(allow_blank=True)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        """The declared fields and ``data`` (a declared ``data`` would hide ``Serializer.data``)."""
        return {**super().get_fields(), "data": EventDataSerializer()}

    def to_representation(self, instance: ChangeEvent) -> dict[str, Any]:
        """The payload itself: one writer of the format (``ChangeEvent.payload``)."""
        return instance.payload()


class EventFilterSerializer(StrictInputSerializer):
    """Filters of the change-event feed (query parameters)."""

    type = serializers.CharField(required=False, max_length=40)
    flag = serializers.CharField(required=False, max_length=100)
    environment = serializers.CharField(required=False, max_length=50)
    since = serializers.DateTimeField(required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1)


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer[WebhookDelivery]):
    """One event sent (or to send) to one webhook: its status, attempts and the last answer."""

    event = ChangeEventOutputSerializer(help_text="The event, as the webhook receives it.")

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "webhook",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "last_status_code",
            "last_duration_ms",
            "last_error",
            "last_response",
            "redelivery_of",
            "event",
        )
        read_only_fields = fields
