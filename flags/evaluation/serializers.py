"""Request and response shapes of the evaluation API, for its schema; and a result's document.

The shapes are documentation only: ``bodies`` reads the request, each view's ``answer`` writes the
response (with :func:`result_document`).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from flagship_sdk.engine import EvaluationResult


class EvaluationRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """``{"context": {...}}``; the context (and the whole body) may be left out."""

    # Declared here, not as a class attribute: ``context`` would shadow Serializer.context.
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        """The one field, ``context``."""
        return {
            "context": serializers.DictField(
                required=False,
                allow_null=True,
                help_text="The evaluation context (OpenFeature naming: `targetingKey` "
                "identifies the subject). Absent or null counts as `{}`.",
            ),
        }


class EvaluationResultSerializer(serializers.Serializer[dict[str, Any]]):
    """One flag's result."""

    value = serializers.JSONField(help_text="The served variant's value (JSON-native type).")
    variant = serializers.CharField(help_text="The served variant's key.")
    reason = serializers.ChoiceField(
        choices=[
            "STATIC",
            "DEFAULT",
            "TARGETING_MATCH",
            "SPLIT",
            "DISABLED",
            "PREREQUISITE_FAILED",
        ],
        help_text="Why the value was served (docs/ruleset-format.md §5).",
    )
    rule = serializers.CharField(
        required=False, help_text="The id of the rule that matched (only when one did)."
    )
    prerequisite = serializers.CharField(
        required=False, help_text="With PREREQUISITE_FAILED: the first parent that failed."
    )


class FlagEvaluationSerializer(EvaluationResultSerializer):
    """One flag evaluated on its own."""

    key = serializers.CharField(help_text="The flag key.")
    version = serializers.IntegerField(help_text="The ruleset version evaluated.")


class FlagsEvaluationSerializer(serializers.Serializer[dict[str, Any]]):
    """Every flag the key may see."""

    flags = serializers.DictField(
        child=EvaluationResultSerializer(), help_text="Results by flag key."
    )
    version = serializers.IntegerField(help_text="The ruleset version evaluated.")


def result_document(result: EvaluationResult) -> dict[str, Any]:
    """A result as the evaluation API answers it: members that are null are left out."""
    document: dict[str, Any] = {
        "value": result.value,
        "variant": result.variant,
        "reason": result.reason,
    }
    if result.rule is not None:
        document["rule"] = result.rule
    if result.prerequisite is not None:
        document["prerequisite"] = result.prerequisite
    if result.error_code is not None:
        document["error_code"] = result.error_code
    return document
