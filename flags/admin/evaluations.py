"""Evaluation counts reported by SDKs, read-only: people look, only SDKs write."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import FlagEvaluationCount
from .base import ReadOnlyAdmin


@admin.register(FlagEvaluationCount)
class FlagEvaluationCountAdmin(ReadOnlyAdmin[FlagEvaluationCount]):
    """The counts per hour, newest first, filterable by environment and searchable by flag."""

    list_display = ("hour", "flag", "environment", "variant_display", "count", "updated_at")
    list_filter = ("environment__project", "environment", "hour")
    search_fields = ("flag__key", "variant")
    list_select_related = ("flag", "environment__project")
    date_hierarchy = "hour"

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagEvaluationCount]:
        """With flag and environment (and its project) joined."""
        return super().get_queryset(request).select_related("flag", "environment__project")

    @admin.display(description="variant", ordering="variant")
    def variant_display(self, obj: FlagEvaluationCount) -> str:
        """The variant, or a dash when the SDK served none."""
        return obj.variant or "—"
