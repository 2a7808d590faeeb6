"""Change requests: what a proposal's write takes, and a change request as the API shows it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ...models import ChangeRequest, ChangeRequestReview
from .base import StrictInputSerializer


class ChangeRequestTextSerializer(StrictInputSerializer):
    """The title and description of the change request a write becomes (gated environments)."""

    title = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="What the change does, in a line (default: the verb and the flags' keys).",
    )
    description = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Why: kept as the reason of the applied change.",
    )


class ScheduleChangeRequestTextSerializer(StrictInputSerializer):
    """The title of the change request a schedule becomes (its description is the note)."""

    title = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="What the schedule does, in a line (default: the flag and its first steps).",
    )


def change_request_field(*, schedule: bool = False) -> serializers.Serializer[Any]:
    """The optional ``change_request`` member of a write's body."""
    kind = ScheduleChangeRequestTextSerializer if schedule else ChangeRequestTextSerializer
    return kind(
        required=False,
        help_text="Used only where the environment takes change requests: the write then "
        "becomes a change request with this title and description (202 Accepted).",
    )


class ReviewInputSerializer(StrictInputSerializer):
    """An approval or a rejection, with an optional comment."""

    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ChangeRequestFilterSerializer(serializers.Serializer[Any]):
    """The list's filters (query parameters)."""

    status = serializers.ChoiceField(choices=ChangeRequest.Status.choices, required=False)
    environment = serializers.CharField(max_length=50, required=False)


class ConflictSerializer(serializers.Serializer[Any]):
    """A flag state that changed since the change request was proposed (or rebased)."""

    flag = serializers.CharField()
    base_version = serializers.IntegerField()
    version = serializers.IntegerField()


class ReviewSerializer(serializers.Serializer[Any]):
    """One reviewer's decision."""

    reviewer = serializers.CharField()
    decision = serializers.ChoiceField(choices=ChangeRequestReview.Decision.choices)
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ProposedStateSerializer(serializers.Serializer[Any]):
    """One flag the change request changes: versions and flag documents."""

    flag = serializers.CharField()
    base_version = serializers.IntegerField(help_text="The version it was proposed against.")
    version = serializers.IntegerField(help_text="The flag state's version now.")
    conflict = serializers.BooleanField(
        help_text="The state changed since its base: applying is refused until rebased."
    )
    base = serializers.JSONField(help_text="The flag document at the base version.")
    proposed = serializers.JSONField(help_text="The flag document once applied.")
    now = serializers.JSONField(
        allow_null=True, help_text="The flag document now (null: unchanged since the base)."
    )


class ScheduleStepSerializer(serializers.Serializer[Any]):
    """One proposed step of a scheduled change."""

    at = serializers.DateTimeField()
    action = serializers.CharField()
    percentage = serializers.IntegerField(allow_null=True)


class ProposedScheduleSerializer(serializers.Serializer[Any]):
    """The scheduled change a schedule change request creates when applied."""

    flag = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    steps = ScheduleStepSerializer(many=True)


class ChangeRequestSerializer(serializers.Serializer[Any]):
    """A change request in a list: what, where, by whom, and its approvals."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ChangeRequest.Kind.choices)
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ChangeRequest.Status.choices)
    environment = serializers.CharField(help_text="The environment's key.")
    flags = serializers.ListField(child=serializers.CharField())
    author = serializers.CharField(allow_null=True)
    approvals = serializers.IntegerField(help_text="Approvals that count.")
    required_approvals = serializers.IntegerField(help_text="What the environment requires.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_by = serializers.CharField(allow_null=True)


class ChangeRequestDetailSerializer(ChangeRequestSerializer):
    """A change request with its flags' documents, conflicts, reviews and proposed schedule."""

    allow_self_approval = serializers.BooleanField(
        help_text="Whether the author's own approval counts in this environment."
    )
    conflicts = ConflictSerializer(many=True)
    items = ProposedStateSerializer(
        many=True, help_text="The flag states it changes (none for a scheduled change)."
    )
    schedule = ProposedScheduleSerializer(
        allow_null=True, help_text="For a scheduled change: the steps it creates."
    )
    reviews = ReviewSerializer(many=True)
