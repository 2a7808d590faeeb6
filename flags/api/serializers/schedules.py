"""Scheduled changes of a flag in one environment: one step or a ramp."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ...models import ScheduledChange, ScheduledStep
from ...models.schedules import FULL
from .base import StrictInputSerializer
from .change_requests import change_request_field


class ScheduledStepInputSerializer(StrictInputSerializer):
    """One step: when, what, and for a rollout the share of subjects served ``on``."""

    at = serializers.DateTimeField(help_text="When it is due (ISO 8601 with an offset).")
    action = serializers.ChoiceField(
        choices=ScheduledStep.Action.choices,
        help_text="enable (switch on), disable (switch off), or rollout (boolean flags).",
    )
    percentage = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=FULL,
        help_text="For a rollout: thousandths of a percent served on (25 % = 25000).",
    )


class ScheduledChangeInputSerializer(StrictInputSerializer):
    """A scheduled change: its steps in order of time, and an optional note (the reason)."""

    note = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Why; shown with each step."
    )
    steps = ScheduledStepInputSerializer(many=True, help_text="At least one, in order of time.")
    change_request = change_request_field(schedule=True)


class ScheduledStepOutputSerializer(serializers.ModelSerializer[ScheduledStep]):
    """A step and where it is: pending, done, failed or cancelled, and how late it ran."""

    class Meta:
        model = ScheduledStep
        fields: tuple[str, ...] = (
            "order",
            "at",
            "action",
            "percentage",
            "status",
            "ran_at",
            "late_seconds",
            "error",
        )
        read_only_fields: tuple[str, ...] = fields


class ScheduledChangeOutputSerializer(serializers.ModelSerializer[ScheduledChange]):
    """A scheduled change with its steps, who made it and whether it was cancelled."""

    flag = serializers.CharField(source="state.flag.key", read_only=True)
    environment = serializers.CharField(source="state.environment.key", read_only=True)
    status = serializers.CharField(
        read_only=True, help_text="pending, done, failed (a step failed) or cancelled."
    )
    created_by = serializers.SerializerMethodField()
    cancelled_by = serializers.SerializerMethodField()
    change_request: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True,
        allow_null=True,
        help_text="The change request that created it (null: scheduled directly).",
    )
    steps = ScheduledStepOutputSerializer(many=True, read_only=True)

    class Meta:
        model = ScheduledChange
        fields: tuple[str, ...] = (
            "id",
            "flag",
            "environment",
            "note",
            "status",
            "created_by",
            "created_at",
            "cancelled_at",
            "cancelled_by",
            "change_request",
            "steps",
        )
        read_only_fields: tuple[str, ...] = fields

    def get_created_by(self, change: ScheduledChange) -> str | None:
        """The username of who scheduled it (null: the system)."""
        return _username(change.created_by)

    def get_cancelled_by(self, change: ScheduledChange) -> str | None:
        """The username of who cancelled it, if anyone did."""
        return _username(change.cancelled_by)


def _username(user: Any) -> str | None:
    return None if user is None else str(user.get_username())
