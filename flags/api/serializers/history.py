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
