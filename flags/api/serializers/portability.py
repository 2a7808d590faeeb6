"""Project export and import (docs/export-format.md): the import's options and its plan."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ...services.project_import import MODES


class ImportOptionsSerializer(serializers.Serializer[Any]):
    """The import's query parameters."""

    mode = serializers.ChoiceField(choices=MODES, default="merge", help_text="merge or replace.")
    dry_run = serializers.BooleanField(
        default=False, help_text="Compute the plan and write nothing."
    )
    project = serializers.CharField(
        required=False, max_length=50, help_text="Import under this project key instead."
    )


class ImportPlanOutputSerializer(serializers.Serializer[Any]):
    """What an import changed (or, in a dry run, would change): keys by what happened to them."""

    project = serializers.CharField()
    project_created = serializers.BooleanField()
    project_changed = serializers.BooleanField(help_text="Name, description or settings changed.")
    mode = serializers.ChoiceField(choices=MODES)
    dry_run = serializers.BooleanField()
    changed = serializers.BooleanField()
    environments = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    segments = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    flags = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    states = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='"flag/environment" keys.',
    )
    unknown_owners = serializers.ListField(child=serializers.CharField())
    diff = serializers.ListField(
        child=serializers.CharField(), help_text="For people: + created, ~ changed, - removed."
    )
