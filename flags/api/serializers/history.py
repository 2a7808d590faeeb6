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
    user = serializers.CharField(required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1)


class ChangePageSerializer(serializers.Serializer[Any]):
    """One page of changes (history endpoints always paginate, whatever their view does)."""

    count = serializers.IntegerField(help_text="Changes in all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, if any.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, if any.")
    results = ChangeOutputSerializer(many=True)
