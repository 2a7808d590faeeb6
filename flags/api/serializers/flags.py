"""Flags and their variants."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ...models import Flag, Variant
from .base import KeyListField, StrictBooleanField, StrictInputSerializer


class VariantOutputSerializer(serializers.ModelSerializer[Variant]):
    """One value a flag can serve."""

    value = serializers.JSONField(read_only=True)

    class Meta:
        model = Variant
        fields = ("key", "name", "value", "order")
        read_only_fields = fields


class FlagOutputSerializer(serializers.ModelSerializer[Flag]):
    """A flag with its variants, tags and whether it is on in each environment."""

    variants = VariantOutputSerializer(many=True, read_only=True)
    tags = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    environments = serializers.SerializerMethodField()

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
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

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
                "properties": {"enabled": {"type": "boolean"}, "version": {"type": "integer"}},
            },
        }
    )
    def get_environments(self, flag: Flag) -> dict[str, dict[str, Any]]:
        """Environment key → on/off and state version (states prefetched with environments)."""
        return {
            state.environment.key: {"enabled": state.enabled, "version": state.version}
            for state in flag.states.all()
        }


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
