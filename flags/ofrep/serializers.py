"""OFREP request and response shapes, for the OpenAPI schema (the views build plain dicts)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

REASONS = ["STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED"]


class OfrepRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """``evaluationRequest`` / ``bulkEvaluationRequest``."""

    # Declared here, not as a class attribute: ``context`` would shadow Serializer.context.
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        """The one field, ``context``."""
        return {
            "context": serializers.DictField(
                required=False,
                help_text="Context information for flag evaluation; `targetingKey` identifies "
                "the subject.",
            ),
        }


class OfrepSuccessSerializer(serializers.Serializer[dict[str, Any]]):
    """``evaluationSuccess``."""

    key = serializers.CharField(help_text="Feature flag key.")
    value = serializers.JSONField(
        help_text="Flag evaluation result (boolean, string, number, object)."
    )
    reason = serializers.ChoiceField(choices=REASONS, help_text="An OpenFeature reason.")
    variant = serializers.CharField(help_text="Variant of the evaluated flag value.")
    metadata = serializers.DictField(
        child=serializers.JSONField(),
        help_text="`rule` (the matched rule) or `prerequisite` (the parent that failed); "
        "`flagshipDegraded` (single-flag evaluation) while a dependency is down.",
    )


class OfrepFailureSerializer(serializers.Serializer[dict[str, Any]]):
    """``evaluationFailure`` and ``flagNotFound``."""

    key = serializers.CharField(help_text="Feature flag key.")
    errorCode = serializers.ChoiceField(  # noqa: N815  # OFREP's member name
        choices=[
            "PARSE_ERROR",
            "TARGETING_KEY_MISSING",
            "INVALID_CONTEXT",
            "GENERAL",
            "FLAG_NOT_FOUND",
        ],
    )
    errorDetails = serializers.CharField()  # noqa: N815  # OFREP's member name


class OfrepBulkFailureSerializer(serializers.Serializer[dict[str, Any]]):
    """``bulkEvaluationFailure``."""

    errorCode = serializers.CharField()  # noqa: N815  # OFREP's member name
    errorDetails = serializers.CharField()  # noqa: N815  # OFREP's member name


class OfrepGeneralErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """``generalErrorResponse`` (401, 403, 429, 500)."""

    errorDetails = serializers.CharField()  # noqa: N815  # OFREP's member name


class OfrepBulkSuccessSerializer(serializers.Serializer[dict[str, Any]]):
    """``bulkEvaluationSuccess``."""

    flags = OfrepSuccessSerializer(many=True)
    metadata = serializers.DictField(
        required=False,
        help_text="Present while a dependency is down: `flagshipDegraded` names it "
        '(`"database"`, `"redis"` or `"database,redis"`); the flags were evaluated with the last '
        "ruleset this server holds.",
    )
