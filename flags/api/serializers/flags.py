"""Flags and their variants."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db.models import Manager, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ...models import Flag, Variant
from ...stale import Stale, last_evaluated
from ...staleness import stale_verdicts
from .base import KeyListField, StrictBooleanField, StrictInputSerializer


class VariantOutputSerializer(serializers.ModelSerializer[Variant]):
    """One value a flag can serve."""

    value = serializers.JSONField(read_only=True)

    class Meta:
        model = Variant
        fields = ("key", "name", "value", "order")
        read_only_fields = fields


class Insights:
    """When each flag was last evaluated, per environment, and which are stale: read once."""

    def __init__(self, flags: Iterable[Flag]) -> None:
        listed = list(flags)
        self.evaluated = last_evaluated(flag.pk for flag in listed)
        self.stale = stale_verdicts(listed, evaluated=self.evaluated)

    def last_evaluated(self, flag: Flag, environment_id: int | None = None) -> str | None:
        """The latest hour with evaluations (in one environment, or any), ISO 8601 UTC."""
        hours = [
            hour
            for (flag_id, env_id), hour in self.evaluated.items()
            if flag_id == flag.pk and environment_id in (None, env_id)
        ]
        return _iso(max(hours)) if hours else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FlagListSerializer(serializers.ListSerializer[Flag]):
    """Flags, their evaluation insights read for the whole page at once (no query per flag)."""

    def to_representation(self, data: Any) -> list[Any]:
        """Each flag, with the page's :class:`Insights`."""
        flags = list(data.all() if isinstance(data, Manager | QuerySet) else data)
        self.child._insights = Insights(flags)  # type: ignore[union-attr]
        return [self.child.to_representation(flag) for flag in flags]  # type: ignore[union-attr]


STALE_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": "Null, or why the flag is stale (docs/operations.md, "
    '"Evaluation counts and stale flags").',
    "properties": {
        "code": {"type": "string", "enum": ["single_variant", "not_evaluated"]},
        "reason": {"type": "string"},
        "since": {"type": "string", "format": "date-time"},
    },
}


class FlagOutputSerializer(serializers.ModelSerializer[Flag]):
    """A flag with its variants, tags, whether it is on in each environment, and insights.

    ``last_evaluated`` (the flag's, and each environment's) is the start of the latest UTC hour
    with counted evaluations (server-side or reported by SDKs); ``stale`` is ``null`` or why the
    flag is stale (``flags.stale``).
    """

    _insights: Insights | None = None

    variants = VariantOutputSerializer(many=True, read_only=True)
    tags = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    environments = serializers.SerializerMethodField()
    last_evaluated = serializers.SerializerMethodField()
    stale = serializers.SerializerMethodField()

    class Meta:
        model = Flag
        fields = (
            "key",
            "name",
            "description",
            "kind",
            "variants",
            "tags",
            "owner",
            "lifecycle",
            "client_visible",
            "salt",
            "archived",
            "environments",
            "last_evaluated",
            "stale",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
        list_serializer_class = FlagListSerializer

    def insights(self, flag: Flag) -> Insights:
        """The page's insights, or this one flag's (read on first use)."""
        if self._insights is None:
            self._insights = Insights([flag])
        return self._insights

    def get_tags(self, flag: Flag) -> list[str]:
        """Tag names (prefetched)."""
        return [tag.name for tag in flag.tags.all()]

    def get_owner(self, flag: Flag) -> str | None:
        """The owner's username."""
        return flag.owner.username if flag.owner is not None else None

    @extend_schema_field(
        {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "version": {"type": "integer"},
                    "last_evaluated": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
        }
    )
    def get_environments(self, flag: Flag) -> dict[str, dict[str, Any]]:
        """Environment key → on/off, state version and last evaluation (states prefetched)."""
        insights = self.insights(flag)
        return {
            state.environment.key: {
                "enabled": state.enabled,
                "version": state.version,
                "last_evaluated": insights.last_evaluated(flag, state.environment_id),
            }
            for state in flag.states.all()
        }

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_last_evaluated(self, flag: Flag) -> str | None:
        """The start of the latest UTC hour with evaluations in any environment."""
        return self.insights(flag).last_evaluated(flag)

    @extend_schema_field(STALE_SCHEMA)
    def get_stale(self, flag: Flag) -> dict[str, Any] | None:
        """``null``, or ``{"code", "reason", "since"}`` (``flags.stale``)."""
        found: Stale | None = self.insights(flag).stale.get(flag.pk)
        if found is None:
            return None
        return {"code": found.code, "reason": found.reason, "since": _iso(found.since)}


class VariantCreateInputSerializer(StrictInputSerializer):
    """A new variant: its key and value (of the flag's kind)."""

    key = serializers.CharField(max_length=100)
    value = serializers.JSONField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class VariantUpdateInputSerializer(StrictInputSerializer):
    """What may change on a variant (never its key)."""

    value = serializers.JSONField(required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class FlagVariantInputSerializer(StrictInputSerializer):
    """A variant given with a new flag."""

    key = serializers.CharField(max_length=100)
    value = serializers.JSONField()


class FlagUpdateInputSerializer(StrictInputSerializer):
    """What may change on a flag (never its key or kind)."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    tags = KeyListField(required=False)
    owner = serializers.CharField(max_length=150, required=False, allow_null=True)
    lifecycle = serializers.ChoiceField(choices=Flag.Lifecycle.choices, required=False)
    client_visible = StrictBooleanField(required=False)
    salt = serializers.CharField(max_length=100, required=False, allow_blank=True)


class FlagCreateInputSerializer(FlagUpdateInputSerializer):
    """What creating a flag takes; boolean flags get on/off when no variants are given."""

    key = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Flag.Kind.choices, required=False)
    variants = FlagVariantInputSerializer(many=True, required=False)
