"""Flag states (switch, serves, rules, prerequisites) and segments."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from flagship_sdk.engine import OPERATORS

from ...formats import HUNDRED_PERCENT
from ...models import Condition, Environment, Flag, FlagState, Prerequisite, Rule, Segment, Variant
from .base import KeyListField, StrictBooleanField, StrictInputSerializer
from .change_requests import change_request_field


class ConditionSerializer(StrictInputSerializer):
    """One condition, in and out (the same shape both ways)."""

    attribute = serializers.CharField(max_length=200)
    operator = serializers.ChoiceField(choices=sorted(OPERATORS))
    values = serializers.ListField(child=serializers.JSONField(), required=False)
    negate = StrictBooleanField(required=False, default=False)
    case_insensitive = StrictBooleanField(required=False, default=False)


def condition_data(condition: Condition) -> dict[str, Any]:
    """A condition rendered for the API."""
    return {
        "attribute": condition.attribute,
        "operator": condition.operator,
        "values": condition.values,
        "negate": condition.negate,
        "case_insensitive": condition.case_insensitive,
    }


class RuleOutputSerializer(serializers.ModelSerializer[Rule]):
    """A rule, with its conditions and segment keys (both prefetched)."""

    conditions = serializers.SerializerMethodField()
    segments = serializers.SerializerMethodField()
    serve = serializers.JSONField(read_only=True)

    class Meta:
        model = Rule
        fields = ("id", "description", "conditions", "segments", "rollout", "bucket_by", "serve")
        read_only_fields = fields

    @extend_schema_field(ConditionSerializer(many=True))
    def get_conditions(self, rule: Rule) -> list[dict[str, Any]]:
        """The rule's conditions, in order."""
        return [condition_data(c) for c in rule.conditions.all()]

    def get_segments(self, rule: Rule) -> list[str]:
        """The keys of the segments users must be in."""
        return [segment.key for segment in rule.segments.all()]


class PrerequisiteOutputSerializer(serializers.ModelSerializer[Prerequisite]):
    """A prerequisite: the parent flag's key and the variants that satisfy it."""

    flag: serializers.SlugRelatedField[Flag] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    variants = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Prerequisite
        fields = ("flag", "variants")
        read_only_fields = fields


class FlagStateOutputSerializer(serializers.ModelSerializer[FlagState]):
    """A flag in one environment."""

    flag: serializers.SlugRelatedField[Flag] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    environment: serializers.SlugRelatedField[Environment] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    off_variant: serializers.SlugRelatedField[Variant] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    default_serve = serializers.JSONField(read_only=True)
    rules = RuleOutputSerializer(many=True, read_only=True)
    prerequisites = PrerequisiteOutputSerializer(many=True, read_only=True)

    class Meta:
        model = FlagState
        fields = (
            "flag",
            "environment",
            "enabled",
            "off_variant",
            "default_serve",
            "rules",
            "prerequisites",
            "version",
            "updated_at",
        )
        read_only_fields = fields


class RuleInputSerializer(StrictInputSerializer):
    """One rule of a state write (the list replaces the state's rules)."""

    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    conditions = ConditionSerializer(many=True, required=False)
    segments = KeyListField(required=False)
    rollout = serializers.IntegerField(
        min_value=0, max_value=HUNDRED_PERCENT, required=False, allow_null=True
    )
    bucket_by = serializers.CharField(max_length=200, required=False)
    serve = serializers.DictField()


class PrerequisiteInputSerializer(StrictInputSerializer):
    """A prerequisite of a state write (the list replaces the state's prerequisites)."""

    flag = serializers.CharField(max_length=100)
    variants = KeyListField(required=False)


class FlagStateInputSerializer(StrictInputSerializer):
    """A state write: PUT needs the switch, off variant and default serve; PATCH any subset."""

    enabled = StrictBooleanField()
    off_variant = serializers.CharField(max_length=100)
    default_serve = serializers.DictField()
    rules = RuleInputSerializer(many=True, required=False)
    prerequisites = PrerequisiteInputSerializer(many=True, required=False)
    change_request = change_request_field()


class ToggleInputSerializer(StrictInputSerializer):
    """Switch a flag on or off."""

    enabled = StrictBooleanField()
    change_request = change_request_field()


class SegmentOutputSerializer(serializers.ModelSerializer[Segment]):
    """A segment with its conditions (prefetched)."""

    conditions = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = ("key", "name", "description", "conditions", "created_at", "updated_at")
        read_only_fields = fields

    @extend_schema_field(ConditionSerializer(many=True))
    def get_conditions(self, segment: Segment) -> list[dict[str, Any]]:
        """The segment's conditions, in order."""
        return [condition_data(c) for c in segment.conditions.all()]


class SegmentUpdateInputSerializer(StrictInputSerializer):
    """What may change on a segment (never its key); conditions replace the old ones."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    conditions = ConditionSerializer(many=True, required=False)


class SegmentCreateInputSerializer(SegmentUpdateInputSerializer):
    """What creating a segment takes."""

    key = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
