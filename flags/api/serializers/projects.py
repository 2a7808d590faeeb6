"""Projects, environments and tags."""

from __future__ import annotations

from rest_framework import serializers

from ...models import Environment, Project, Tag
from .base import StrictBooleanField, StrictInputSerializer


class ProjectOutputSerializer(serializers.ModelSerializer[Project]):
    """A project as the API shows it."""

    class Meta:
        model = Project
        fields = ("key", "name", "description", "reason_required", "created_at", "updated_at")
        read_only_fields = fields


class ProjectCreateInputSerializer(StrictInputSerializer):
    """What creating a project takes (its environments are created with it)."""

    key = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)
    reason_required = StrictBooleanField(
        required=False,
        help_text="Changes in the project's protected environments need a reason (in the admin).",
    )


class ProjectUpdateInputSerializer(StrictInputSerializer):
    """What may change on a project (never its key)."""

    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    reason_required = StrictBooleanField(
        required=False,
        help_text="Changes in the project's protected environments need a reason (in the admin).",
    )


class EnvironmentOutputSerializer(serializers.ModelSerializer[Environment]):
    """An environment as the API shows it."""

    class Meta:
        model = Environment
        fields = (
            "key",
            "name",
            "color",
            "order",
            "protected",
            "required_approvals",
            "allow_self_approval",
            "ruleset_version",
        )
        read_only_fields = fields


class EnvironmentUpdateInputSerializer(StrictInputSerializer):
    """What may change on an environment (never its key)."""

    name = serializers.CharField(max_length=100, required=False)
    color = serializers.CharField(max_length=7, required=False)
    order = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    protected = StrictBooleanField(required=False)
    required_approvals = serializers.IntegerField(
        min_value=0,
        max_value=10,
        required=False,
        help_text="Approvals a change to a flag here needs (0: changes apply directly; more: "
        "they become change requests). Only a protected environment takes change requests.",
    )
    allow_self_approval = StrictBooleanField(
        required=False,
        help_text="Whether the author of a change request may approve it (and count).",
    )


class EnvironmentCreateInputSerializer(EnvironmentUpdateInputSerializer):
    """What creating an environment takes."""

    key = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=100)


class TagOutputSerializer(serializers.ModelSerializer[Tag]):
    """A tag."""

    class Meta:
        model = Tag
        fields = ("name", "color")
        read_only_fields = fields


class TagInputSerializer(StrictInputSerializer):
    """What creating a tag takes."""

    name = serializers.CharField(max_length=50)
    color = serializers.CharField(max_length=7, required=False)
