"""Evaluation counts reported by SDKs, read-only: people look, only SDKs write."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import FlagEvaluationCount


@admin.register(FlagEvaluationCount)
class FlagEvaluationCountAdmin(admin.ModelAdmin[FlagEvaluationCount]):
    """The counts per hour, newest first, filterable by environment and searchable by flag."""

    list_display = ("hour", "flag", "environment", "variant_display", "count", "updated_at")
    list_filter = ("environment__project", "environment", "hour")
    search_fields = ("flag__key", "variant")
    list_select_related = ("flag", "environment__project")
    date_hierarchy = "hour"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagEvaluationCount]:
        """With flag and environment (and its project) joined."""
        return super().get_queryset(request).select_related("flag", "environment__project")

    @admin.display(description="variant", ordering="variant")
    def variant_display(self, obj: FlagEvaluationCount) -> str:
        """The variant, or a dash when the SDK served none."""
        return obj.variant or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Never: counts come from SDKs."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: counts are only ever added to."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never from the admin (retention is an operations task)."""
        return False
