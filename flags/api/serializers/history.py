"""History rows and the audit feed."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .base import StrictInputSerializer


class FieldChangeSerializer(serializers.Serializer[Any]):
    """One changed field: its old and new value (``old`` is null on creation)."""

    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class ChangeOutputSerializer(serializers.Serializer[Any]):
    """Who changed what, when."""

    id = serializers.IntegerField()
    date = serializers.DateTimeField()
    type = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    user = serializers.CharField(allow_null=True)
    model = serializers.CharField()
    object_id = serializers.IntegerField()
    changes = FieldChangeSerializer(many=True)


class AuditFilterSerializer(StrictInputSerializer):
    """Audit feed filters (query parameters)."""

    project = serializers.CharField(required=False)
    environment = serializers.CharField(required=False)
    flag = serializers.CharField(required=False)
    user = serializers.CharField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Environment and flag keys are a project's (so they need it); since comes before until."""
        errors: dict[str, list[serializers.ErrorDetail]] = {}
        for name in ("environment", "flag"):
            if name in attrs and "project" not in attrs:
                message = f"Give the project too: {name} keys are unique within a project only."
                errors[name] = [serializers.ErrorDetail(message, code="project_required")]
        if "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            message = "Must be later than since."
            errors["until"] = [serializers.ErrorDetail(message, code="invalid_range")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ChangePageSerializer(serializers.Serializer[Any]):
    """One page of changes (history endpoints always paginate, whatever their view does)."""

    count = serializers.IntegerField(help_text="Changes in all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, if any.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, if any.")
    results = ChangeOutputSerializer(many=True)
