"""Evaluation counts (server-side and reported by SDKs), read-only: people look, nobody writes.

Every role reads them (``accounts.roles``: ``view_flagevaluationcount``). The flag page shows a
summary per environment (:func:`flag_overview`); the counts themselves are listed here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Max, Q, QuerySet, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import Flag, FlagEvaluationCount, FlagState
from ..stale import stale_flags
from .base import ReadOnlyAdmin

RECENT = timedelta(days=7)


def flag_overview(flag: Flag) -> SafeString:
    """One row per environment: last evaluated (the hour), evaluations in 7 days; staleness."""
    since = timezone.now() - RECENT
    totals: dict[int, dict[str, Any]] = {
        row["environment_id"]: dict(row)
        for row in FlagEvaluationCount.objects.filter(flag=flag)
        .order_by()
        .values("environment_id")
        .annotate(last=Max("hour"), recent=Sum("count", filter=Q(hour__gte=since)))
    }
    states = FlagState.objects.filter(flag=flag).select_related("environment")
    rows = format_html_join(
        "",
        '<tr><th><i class="fs-dot" style="background:{}"></i>{}</th>'
        '<td data-testid="last-evaluated-{}">{}</td><td data-testid="evaluations-7d-{}">{}</td>'
        "</tr>",
        (
            (
                state.environment.color,
                state.environment.name,
                state.environment.key,
                f"{totals[state.environment_id]['last']:%Y-%m-%d %H:00} UTC"
                if state.environment_id in totals
                else "never",
                state.environment.key,
                totals.get(state.environment_id, {}).get("recent") or 0,
            )
            for state in states.order_by("environment__order", "environment__key")
        ),
    )
    stale = stale_flags([flag]).get(flag.pk)
    verdict = (
        format_html(
            '<p class="fs-warning" data-testid="stale-reason">Stale since {}: {}</p>',
            f"{stale.since:%Y-%m-%d}",
            stale.reason,
        )
        if stale is not None
        else format_html("{}", "")
    )
    counts_url = reverse("admin:flags_flagevaluationcount_changelist")
    return format_html(
        '{}<div class="fs-scroll"><table class="fs-states fs-evaluations"><thead><tr>'
        "<th>environment</th><th>last evaluated</th><th>evaluations (7 days)</th></tr></thead>"
        "<tbody>{}</tbody>"
        '</table></div><p><a href="{}?{}">Every count of this flag →</a></p>',
        verdict,
        rows,
        counts_url,
        urlencode({"q": flag.key}),
    )


@admin.register(FlagEvaluationCount)
class FlagEvaluationCountAdmin(ReadOnlyAdmin[FlagEvaluationCount]):
    """The counts per hour, newest first, filterable by environment and searchable by flag.

    Server-side counts (REST and OFREP) and SDK reports add up in the same rows.
    """

    project_path = "environment__project"

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
