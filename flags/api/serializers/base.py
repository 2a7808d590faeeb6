"""Serializer building blocks: unknown fields and loose booleans are refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer[Any]):
    """An input serializer that refuses fields it does not know (typos must not pass silently)."""

    def to_internal_value(self, data: Any) -> Any:
        """Report unknown fields next to their names, then validate as usual."""
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true`` or ``false`` only: ``"yes"`` or ``1`` are refused, not guessed."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        """Accept a JSON boolean only."""
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class KeyListField(serializers.ListField):
    """A list of keys (flag, segment or tag names)."""

    child = serializers.CharField(max_length=100)
